"""What JavaScript, TypeScript and TSX share: one family of grammars, one set of rules.

The language modules (``javascript``, ``typescript``, ``tsx``) build their
:class:`~engine.languages.base.Language` from these pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from tree_sitter import Node

from engine.languages.base import (
    CheckerCommand,
    CheckerPlan,
    LanguageSpec,
    LexicalRules,
    Outline,
    TypeTables,
)
from engine.languages.scoping import (
    Declaration,
    ScopeKind,
    TableScopes,
    climb_targets,
    field_name,
    nearest,
)
from engine.languages.words import ANY, names

COMMENT: Final = "//"

# Template literals (back quotes) span lines.
SCRIPT: Final = LexicalRules((COMMENT,), ("/*", "*/"), ('"', "'", "`"), frozenset({"`"}))
"""Lexical rules of code without JSX (TypeScript: `<T>` is a type argument, not a tag)."""

SCRIPT_WITH_JSX: Final = LexicalRules(
    (COMMENT,), ("/*", "*/"), ('"', "'", "`"), frozenset({"`"}), angle_brackets=True
)
"""Lexical rules of code that may hold JSX: `<tag>` ... `</tag>` count as brackets."""

BLOCK_NODES: Final = frozenset({"statement_block", "class_body"})

_OUTLINE_FUNCTIONS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "function_signature",
        "abstract_method_signature",
        "method_signature",
    }
)
OUTLINE: Final = Outline(
    imports=frozenset({"import_statement"}),
    scopes=_OUTLINE_FUNCTIONS
    | {"class_declaration", "abstract_class_declaration", "class", "interface_declaration"},
    functions=_OUTLINE_FUNCTIONS,
    definitions=_OUTLINE_FUNCTIONS
    | {
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "type_alias_declaration",
        "enum_declaration",
        "lexical_declaration",
        "variable_declaration",
        "public_field_definition",
    },
    containers=frozenset({"class_declaration", "abstract_class_declaration"}),
    wrappers=frozenset({"export_statement"}),
)

_KEYWORDS = names(
    """
    break case catch class const continue debugger default delete do else export extends
    false finally for function if import in instanceof new null return super switch this throw
    true try typeof var void while with yield let static enum await implements package
    protected interface private public"""
)
JS_AVOID: Final = names(
    """
    arguments eval undefined NaN Infinity globalThis window document console Math JSON
    Object Array String Number Boolean Symbol Promise Map Set Error require module exports"""
)
"""Names a new JavaScript binding must not take: globals a reader expects to mean one thing."""

TS_AVOID: Final = JS_AVOID | names(
    "any unknown never number string boolean symbol object bigint type namespace declare"
)
"""JavaScript's, plus TypeScript's type names."""

_EXPRESSIONS = names(
    """
    await_expression binary_expression jsx_element jsx_self_closing_element new_expression
    ternary_expression unary_expression array arrow_function call_expression class false
    function_expression generator_function identifier member_expression null number object
    parenthesized_expression regex string subscript_expression template_string true undefined
    as_expression satisfies_expression non_null_expression type_assertion
    instantiation_expression"""
)
_NOT_EXTRACTABLE = names(
    """
    assignment_expression augmented_assignment_expression update_expression
    yield_expression this super meta_property sequence_expression"""
)
_SPEC_FUNCTIONS = frozenset(
    {"function_declaration", "generator_function_declaration", "method_definition"}
)
_SPEC_LAMBDAS = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)


def spec(name: str, avoid: frozenset[str]) -> LanguageSpec:
    """The refactoring facts of one language of the family."""
    return LanguageSpec(
        name=name,
        case="camel",
        comment=COMMENT,
        keywords=_KEYWORDS,
        avoid=avoid,
        identifier_extra="$",
        indent_unit="  ",
        statement_containers=frozenset(
            {"statement_block", "program", "switch_case", "switch_default", "class_static_block"}
        ),
        expression_kinds=_EXPRESSIONS,
        not_extractable=_NOT_EXTRACTABLE,
        expression_statements=frozenset({"expression_statement"}),
        functions=_SPEC_FUNCTIONS,
        lambdas=_SPEC_LAMBDAS,
        loops=MappingProxyType(
            {
                "while_statement": frozenset(),
                "do_statement": frozenset(),
                "for_statement": frozenset({"initializer"}),
                "for_in_statement": frozenset({"right"}),
            }
        ),
        branches=MappingProxyType(
            {
                "ternary_expression": frozenset({"consequence", "alternative"}),
                "else_clause": ANY,
                "if_statement": frozenset({"alternative"}),
            }
        ),
        short_circuit=frozenset({"&&", "||", "??"}),
        string_kinds=frozenset({"string", "template_string"}),
        comment_kinds=frozenset({"comment"}),
        call_kinds=frozenset({"call_expression", "new_expression"}),
        same_line_separator=" ",
        binding_prompt_prefix="const ",
        function_prompt_prefix="function ",
        binding_template="const {name} = {expression};",
    )


def tsc_check(*, jsx: bool) -> CheckerPlan:
    """The ``tsc`` checker plan for TypeScript (``jsx``: TSX, kept as written)."""
    name = "snippet.tsx" if jsx else "snippet.ts"
    argv: tuple[str, ...] = (
        "tsc",
        "--noEmit",
        "--pretty",
        "false",
        "--skipLibCheck",
        "--target",
        "es2020",
    )
    if jsx:
        argv += ("--jsx", "preserve")
    command = CheckerCommand(name, (*argv, name))

    def plan(code: str, directory: str) -> CheckerCommand | str:
        return command

    return plan


TYPES: Final = TypeTables(
    boolean="boolean",
    literals=MappingProxyType(
        {
            "number": "number",
            "string": "string",
            "template_string": "string",
            "true": "boolean",
            "false": "boolean",
        }
    ),
    method_results=MappingProxyType(
        {"toString": "string", "toFixed": "string", "includes": "boolean", "indexOf": "number"}
    ),
)
"""Type tables of the family (only TypeScript's types are ever written out)."""


# --------------------------------------------------------------------------- binding rules

_JS_FUNCTION_KINDS = frozenset(
    {
        "function_declaration",
        "function_expression",
        "function",
        "generator_function_declaration",
        "generator_function",
        "arrow_function",
        "method_definition",
    }
)
_JS_SCOPES: Mapping[str, ScopeKind] = MappingProxyType(
    {
        "program": "module",
        **{k: "function" for k in _JS_FUNCTION_KINDS},
        "class_declaration": "class",
        "abstract_class_declaration": "class",
        "class": "class",
        "statement_block": "block",
        "for_statement": "block",
        "for_in_statement": "block",
        "catch_clause": "block",
        "switch_body": "block",
        "class_static_block": "block",
    }
)
_JS_BLOCKS = frozenset(
    {"program", "statement_block", "for_statement", "for_in_statement", "switch_body"}
    | _JS_FUNCTION_KINDS
    | {"class_static_block"}
)
_JS_VAR_SCOPES = frozenset({"program"} | _JS_FUNCTION_KINDS)
_JS_TARGET_WRAPPERS = frozenset(
    {
        "array_pattern",
        "object_pattern",
        "pair_pattern",
        "assignment_pattern",
        "object_assignment_pattern",
        "rest_pattern",
        "parenthesized_expression",
    }
)
_JSX_NAMES = frozenset({"jsx_opening_element", "jsx_closing_element", "jsx_self_closing_element"})


class JavaScriptRules(TableScopes):
    """Bindings of JavaScript and TypeScript: ``var`` hoisting, block-scoped ``let``/``const``.

    Scopes: program, functions, classes, blocks, loops, catch, switch.
    """

    reference_kinds = frozenset({"identifier", "shorthand_property_identifier"})
    scopes = _JS_SCOPES

    def __init__(self, language: str) -> None:
        self.language = language

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Variables, functions, classes, parameters, catch and loop bindings, imports."""
        kind = node.type
        name: Node | None
        if kind in ("variable_declaration", "lexical_declaration"):
            hoisted = kind == "variable_declaration"
            scope = nearest(node.parent, _JS_VAR_SCOPES if hoisted else _JS_BLOCKS) or node
            constant = any(c.type == "const" for c in node.children)
            for declarator in node.named_children:
                if declarator.type != "variable_declarator":
                    continue
                target = declarator.child_by_field_name("name")
                for name in self.pattern_names(target):
                    yield Declaration(
                        name,
                        scope,
                        "variable",
                        scope.start_byte,
                        type_node=declarator.child_by_field_name("type"),
                        value_node=declarator.child_by_field_name("value")
                        if target is name
                        else None,
                        mutable=not constant,
                        merge=hoisted,
                    )
        elif kind in ("function_declaration", "generator_function_declaration"):
            name = node.child_by_field_name("name")
            scope = nearest(node.parent, _JS_BLOCKS) or node
            if name is not None:
                yield Declaration(name, scope, "function", scope.start_byte, merge=True)
        elif kind in ("class_declaration", "abstract_class_declaration", "class"):
            name = node.child_by_field_name("name")
            scope = node if kind == "class" else nearest(node.parent, _JS_BLOCKS) or node
            if name is not None:
                yield Declaration(name, scope, "class", scope.start_byte)
        elif kind in ("function_expression", "function", "generator_function"):
            name = node.child_by_field_name("name")
            if name is not None:
                yield Declaration(name, node, "function", node.start_byte)
        elif kind == "enum_declaration":
            name = node.child_by_field_name("name")
            scope = nearest(node.parent, _JS_BLOCKS) or node
            if name is not None and name.type == "identifier":
                yield Declaration(name, scope, "constant", scope.start_byte)
        elif kind == "catch_clause":
            for name in self.pattern_names(node.child_by_field_name("parameter")):
                yield Declaration(name, node, "variable", node.start_byte)
        elif kind == "for_in_statement":
            keyword = node.child_by_field_name("kind")
            if keyword is not None:
                scope = node if keyword.type != "var" else nearest(node, _JS_VAR_SCOPES) or node
                for name in self.pattern_names(node.child_by_field_name("left")):
                    yield Declaration(
                        name, scope, "variable", node.start_byte, mutable=keyword.type != "const"
                    )
        elif kind == "import_statement":
            scope = nearest(node.parent, _JS_BLOCKS) or node
            for name in self.imported_names(node):
                yield Declaration(name, scope, "import", scope.start_byte, mutable=False)
        if kind in _JS_FUNCTION_KINDS:
            single = node.child_by_field_name("parameter")
            params = [single] if single is not None else []
            formal = node.child_by_field_name("parameters")
            params.extend(formal.named_children if formal is not None else [])
            for param in params:
                type_node = param.child_by_field_name("type")
                for name in self.pattern_names(param):
                    yield Declaration(name, node, "parameter", node.start_byte, type_node=type_node)

    def pattern_names(self, pattern: Node | None) -> list[Node]:
        """Identifiers a binding pattern (or parameter) declares."""
        if pattern is None:
            return []
        kind = pattern.type
        if kind in ("identifier", "shorthand_property_identifier_pattern"):
            return [pattern]
        if kind in ("required_parameter", "optional_parameter"):
            return self.pattern_names(pattern.child_by_field_name("pattern"))
        if kind == "pair_pattern":
            return self.pattern_names(pattern.child_by_field_name("value"))
        if kind in ("assignment_pattern", "object_assignment_pattern"):
            return self.pattern_names(pattern.child_by_field_name("left"))
        if kind in ("object_pattern", "array_pattern", "rest_pattern"):
            return [n for child in pattern.named_children for n in self.pattern_names(child)]
        return []

    def imported_names(self, node: Node) -> list[Node]:
        """Local names an ``import`` statement binds."""
        names: list[Node] = []
        clause = next((c for c in node.named_children if c.type == "import_clause"), None)
        for item in clause.named_children if clause is not None else ():
            if item.type == "identifier":
                names.append(item)
            elif item.type == "namespace_import":
                names.extend(c for c in item.named_children if c.type == "identifier")
            elif item.type == "named_imports":
                for spec in item.named_children:
                    local = spec.child_by_field_name("alias") or spec.child_by_field_name("name")
                    if local is not None and local.type == "identifier":
                        names.append(local)
        return names

    def is_reference(self, node: Node) -> bool:
        """Excludes imported/exported external names and lower-case JSX tags."""
        parent = node.parent
        if parent is None:
            return True
        field = field_name(node)
        if parent.type == "export_specifier" and field == "alias":
            return False
        if parent.type == "import_specifier":
            return False
        if parent.type in _JSX_NAMES and field == "name":
            text = (node.text or b"").decode("utf-8", "replace")
            return bool(text) and text[0].isupper()
        return parent.type not in ("nested_identifier", "internal_module", "nested_type_identifier")

    def access(self, node: Node) -> tuple[bool, bool]:
        """Assignment targets write; ``+=`` and ``++`` read and write."""
        target, field = climb_targets(node, _JS_TARGET_WRAPPERS)
        parent = target.parent
        if parent is None:
            return True, False
        if parent.type == "assignment_expression" and field == "left":
            return False, True
        if parent.type == "augmented_assignment_expression" and field == "left":
            return True, True
        if parent.type == "update_expression":
            return True, True
        if parent.type == "for_in_statement" and field == "left":
            return False, True
        return True, False
