"""Python: names, grammar, post-processing rules, refactoring facts, checker."""

from __future__ import annotations

import builtins
import keyword
import sys
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from tree_sitter import Node

from engine.languages.base import (
    Checker,
    CheckerCommand,
    Grammar,
    Language,
    LanguageSpec,
    LexicalRules,
    Outline,
)
from engine.languages.scoping import (
    BindingKind,
    Declaration,
    ScopeKind,
    TableScopes,
    climb_targets,
    field_name,
    nearest,
    scope_ancestor,
)
from engine.languages.words import ANY, names

ID: Final = "python"
COMMENT: Final = "#"

# Triple quotes first: the scanner takes the first delimiter that matches.
LEXICAL: Final = LexicalRules((COMMENT,), None, ('"""', "'''", '"', "'"), frozenset({'"""', "'''"}))

OUTLINE: Final = Outline(
    imports=frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    scopes=frozenset({"function_definition", "class_definition"}),
    functions=frozenset({"function_definition"}),
    definitions=frozenset({"function_definition", "class_definition", "assignment"}),
    containers=frozenset({"class_definition"}),
    wrappers=frozenset({"decorated_definition", "expression_statement"}),
)

_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_AVOID = frozenset(name for name in dir(builtins) if not name.startswith("_")) | {"self", "cls"}

SPEC: Final = LanguageSpec(
    name=ID,
    case="snake",
    comment=COMMENT,
    keywords=_KEYWORDS,
    avoid=_AVOID,
    identifier_extra="",
    indent_unit="    ",
    statement_containers=frozenset({"block", "module"}),
    expression_kinds=names(
        """
        boolean_operator comparison_operator conditional_expression lambda
        not_operator attribute await binary_operator call concatenated_string dictionary
        dictionary_comprehension false float generator_expression identifier integer
        list list_comprehension none parenthesized_expression set set_comprehension
        string subscript true tuple unary_operator"""
    ),
    not_extractable=frozenset(
        {"named_expression", "list_splat", "dictionary_splat", "ellipsis", "yield"}
    ),
    expression_statements=frozenset({"expression_statement"}),
    functions=frozenset({"function_definition"}),
    lambdas=frozenset({"lambda"}),
    loops=MappingProxyType(
        {
            "while_statement": frozenset(),
            "for_statement": frozenset({"right"}),
            "list_comprehension": frozenset({"for_in_clause"}),
            "set_comprehension": frozenset({"for_in_clause"}),
            "dictionary_comprehension": frozenset({"for_in_clause"}),
            "generator_expression": frozenset({"for_in_clause"}),
            "for_in_clause": frozenset({"right"}),
        }
    ),
    branches=MappingProxyType(
        {"conditional_expression": frozenset({"#branches"}), "elif_clause": ANY}
    ),
    short_circuit=frozenset({"and", "or"}),
    string_kinds=frozenset({"string", "concatenated_string"}),
    comment_kinds=frozenset({"comment"}),
    call_kinds=frozenset({"call"}),
    same_line_separator="; ",
    binding_prompt_prefix="",
    function_prompt_prefix="def ",
    binding_template="{name} = {expression}",
)


def _check(code: str, directory: str) -> CheckerCommand | str:
    # This interpreter, isolated (-I): no user site-packages or PYTHON* variables.
    argv = (sys.executable, "-I", "-m", "py_compile", "snippet.py")
    return CheckerCommand("snippet.py", argv)


# --------------------------------------------------------------------------- binding rules

_PY_SCOPES: Mapping[str, ScopeKind] = MappingProxyType(
    {
        "module": "module",
        "function_definition": "function",
        "lambda": "function",
        "class_definition": "class",
        "list_comprehension": "comprehension",
        "set_comprehension": "comprehension",
        "dictionary_comprehension": "comprehension",
        "generator_expression": "comprehension",
    }
)
_PY_BINDING_SCOPES = frozenset({"module", "function_definition", "lambda", "class_definition"})
_PY_TARGET_WRAPPERS = frozenset(
    {
        "pattern_list",
        "tuple_pattern",
        "list_pattern",
        "list_splat_pattern",
        "parenthesized_expression",
        "as_pattern_target",
        "expression_list",
    }
)
_PY_IMPORTS = frozenset({"import_statement", "import_from_statement", "future_import_statement"})


class PythonRules(TableScopes):
    """Bindings of Python: function-level scopes, class scopes hidden from methods.

    Scopes: module, def, lambda, class, comprehensions.
    """

    language = "python"
    skip_class_scopes_from_functions = True
    scopes = _PY_SCOPES

    def nonlocal_names(self, node: Node) -> Iterable[str]:
        """Names listed by ``global`` and ``nonlocal``."""
        if node.type not in ("global_statement", "nonlocal_statement"):
            return ()
        return [
            (c.text or b"").decode("utf-8", "replace")
            for c in node.named_children
            if c.type == "identifier"
        ]

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Assignments, parameters, defs, classes, loop targets, imports, walrus."""
        kind = node.type
        name: Node | None
        scope: Node | None
        if kind in ("function_definition", "class_definition"):
            name = node.child_by_field_name("name")
            if name is not None:
                scope = scope_ancestor(node, _PY_SCOPES)
                binding_kind: BindingKind = "function" if kind == "function_definition" else "class"
                yield Declaration(name, scope, binding_kind, scope.start_byte, merge=True)
        if kind in ("function_definition", "lambda"):
            for param in (node.child_by_field_name("parameters") or node).named_children:
                name = self._parameter_name(param)
                if name is not None:
                    yield Declaration(
                        name,
                        node,
                        "parameter",
                        node.start_byte,
                        type_node=param.child_by_field_name("type"),
                        merge=True,
                    )
        elif kind == "assignment":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            scope = nearest(node.parent, _PY_BINDING_SCOPES) or node
            for name in self.target_names(left):
                yield Declaration(
                    name,
                    scope,
                    "variable",
                    scope.start_byte,
                    type_node=node.child_by_field_name("type"),
                    value_node=right if left is name else None,
                    merge=True,
                )
        elif kind == "augmented_assignment":
            left = node.child_by_field_name("left")
            if left is not None and left.type == "identifier":
                scope = nearest(node.parent, _PY_BINDING_SCOPES) or node
                yield Declaration(left, scope, "variable", scope.start_byte, merge=True, reads=True)
        elif kind in ("for_statement", "for_in_clause"):
            scope = node.parent if kind == "for_in_clause" else None
            scope = scope or nearest(node.parent, _PY_BINDING_SCOPES) or node
            for name in self.target_names(node.child_by_field_name("left")):
                yield Declaration(name, scope, "variable", scope.start_byte, merge=True)
        elif kind == "as_pattern_target":
            scope = nearest(node.parent, _PY_BINDING_SCOPES) or node
            for name in self.target_names(node):
                yield Declaration(name, scope, "variable", scope.start_byte, merge=True)
        elif kind == "named_expression":
            name = node.child_by_field_name("name")
            scope = nearest(node.parent, frozenset({"module", "function_definition", "lambda"}))
            if name is not None and scope is not None:
                yield Declaration(name, scope, "variable", scope.start_byte, merge=True)
        elif kind in ("import_statement", "import_from_statement"):
            scope = nearest(node.parent, _PY_BINDING_SCOPES) or node
            for name in self.imported_names(node):
                yield Declaration(name, scope, "import", scope.start_byte, merge=True)

    def _parameter_name(self, param: Node) -> Node | None:
        if param.type == "identifier":
            return param
        if param.type in ("default_parameter", "typed_default_parameter"):
            return param.child_by_field_name("name")
        if param.type in ("typed_parameter", "list_splat_pattern", "dictionary_splat_pattern"):
            first = param.named_children[0] if param.named_children else None
            if first is not None and first.type == "identifier":
                return first
            if first is not None:
                return self._parameter_name(first)
        return None

    def target_names(self, target: Node | None) -> list[Node]:
        """Names an assignment or loop target binds (not attributes or subscripts)."""
        if target is None:
            return []
        if target.type == "identifier":
            return [target]
        if target.type in _PY_TARGET_WRAPPERS:
            return [n for child in target.named_children for n in self.target_names(child)]
        return []

    def imported_names(self, node: Node) -> list[Node]:
        """The names an import statement binds locally."""
        names: list[Node] = []
        for item in node.children_by_field_name("name"):
            if item.type == "aliased_import":
                alias = item.child_by_field_name("alias")
                if alias is not None:
                    names.append(alias)
            elif item.type == "dotted_name" and item.named_children:
                # `import a.b` binds `a`; `from m import b` binds `b`.
                parts = item.named_children
                names.append(parts[0] if node.type == "import_statement" else parts[-1])
        return names

    def is_reference(self, node: Node) -> bool:
        """Excludes attribute names, keyword-argument names and import paths."""
        parent = node.parent
        if parent is None:
            return True
        field = field_name(node)
        if parent.type == "attribute" and field == "attribute":
            return False
        if parent.type == "keyword_argument" and field == "name":
            return False
        if parent.type in ("global_statement", "nonlocal_statement"):
            return False
        return nearest(parent, _PY_IMPORTS) is None

    def access(self, node: Node) -> tuple[bool, bool]:
        """Targets of assignments to ``global``/``nonlocal`` names write."""
        target, field = climb_targets(node, _PY_TARGET_WRAPPERS)
        parent = target.parent
        if parent is None:
            return True, False
        if parent.type in ("assignment", "for_statement") and field == "left":
            return False, True
        if parent.type == "augmented_assignment" and field == "left":
            return True, True
        if parent.type == "delete_statement":
            return False, True
        return True, False


LANGUAGE: Final = Language(
    id=ID,
    aliases=("py", "python3"),
    extensions=(".py", ".pyi", ".pyw"),
    grammar=Grammar("tree_sitter_python"),
    line_comment=COMMENT,
    lexical=LEXICAL,
    offside=True,
    block_nodes=frozenset({"block"}),
    outline=OUTLINE,
    spec=SPEC,
    binding_rules=PythonRules,
    checker=Checker("py_compile", _check),
    # Refactorings write no Python annotations, so they infer no Python types.
    types=None,
)
