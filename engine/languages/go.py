"""Go: names, grammar, post-processing rules, refactoring facts, checker, type tables."""

from __future__ import annotations

import re
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
    TypeTables,
)
from engine.languages.scoping import (
    Declaration,
    ScopeKind,
    TableScopes,
    climb_targets,
    field_name,
    nearest,
    scope_ancestor,
)
from engine.languages.words import names

ID: Final = "go"
COMMENT: Final = "//"

# Back-quoted raw strings span lines; `'` is a rune literal.
LEXICAL: Final = LexicalRules(
    (COMMENT,), ("/*", "*/"), ('"', "'", "`"), frozenset({"`"}), char_literals=True
)

OUTLINE: Final = Outline(
    imports=frozenset({"import_declaration"}),
    scopes=frozenset({"function_declaration", "method_declaration"}),
    functions=frozenset({"function_declaration", "method_declaration"}),
    definitions=frozenset(
        {
            "function_declaration",
            "method_declaration",
            "type_spec",
            "type_alias",
            "const_spec",
            "var_spec",
        }
    ),
    containers=frozenset({"type_declaration", "const_declaration", "var_declaration"}),
    wrappers=frozenset(),
)

_KEYWORDS = names(
    """
    break case chan const continue default defer else fallthrough for func go goto if
    import interface map package range return select struct switch type var"""
)
_AVOID = names(
    """
    bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune
    string uint uint8 uint16 uint32 uint64 uintptr true false iota nil append cap clear close
    complex copy delete imag len make max min new panic print println real recover any
    comparable fmt"""
)

SPEC: Final = LanguageSpec(
    name=ID,
    case="camel",
    comment=COMMENT,
    keywords=_KEYWORDS,
    avoid=_AVOID,
    identifier_extra="",
    indent_unit="\t",
    statement_containers=frozenset({"statement_list"}),
    expression_kinds=names(
        """
        binary_expression call_expression composite_literal false float_literal
        func_literal identifier imaginary_literal index_expression int_literal
        interpreted_string_literal parenthesized_expression raw_string_literal
        rune_literal selector_expression slice_expression true
        type_assertion_expression type_conversion_expression unary_expression"""
    ),
    not_extractable=frozenset({"nil", "iota"}),
    expression_statements=frozenset({"expression_statement"}),
    functions=frozenset({"function_declaration", "method_declaration"}),
    lambdas=frozenset({"func_literal"}),
    loops=MappingProxyType(
        {
            "for_statement": frozenset({"range_clause", "for_clause"}),
            "for_clause": frozenset({"initializer"}),
            "range_clause": frozenset({"right"}),
        }
    ),
    branches=MappingProxyType({"if_statement": frozenset({"alternative"})}),
    short_circuit=frozenset({"&&", "||"}),
    string_kinds=frozenset({"raw_string_literal", "interpreted_string_literal"}),
    comment_kinds=frozenset({"comment"}),
    call_kinds=frozenset({"call_expression"}),
    same_line_separator="; ",
    binding_prompt_prefix="",
    function_prompt_prefix="func ",
    binding_template="{name} := {expression}",
)

_PACKAGE_CLAUSE = re.compile(r"^\s*package\s+\w+", re.MULTILINE)


def _check(code: str, directory: str) -> CheckerCommand | str:
    # `go vet` needs a whole file; a fragment would only report the missing package.
    if not _PACKAGE_CLAUSE.search(code):
        return "not a complete Go file (no package clause)"
    return CheckerCommand("snippet.go", ("go", "vet", "snippet.go"))


_BASIC_TYPES = frozenset(
    [
        "bool",
        "byte",
        "rune",
        "string",
        "int",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "uintptr",
        "float32",
        "float64",
        "complex64",
        "complex128",
    ]
)

TYPES: Final = TypeTables(
    boolean="bool",
    literals=MappingProxyType(
        {
            "int_literal": "int",
            "float_literal": "float64",
            "interpreted_string_literal": "string",
            "raw_string_literal": "string",
            "rune_literal": "rune",
            "true": "bool",
            "false": "bool",
        }
    ),
    function_results=MappingProxyType({"len": "int", "cap": "int", "copy": "int"}),
    conversions=_BASIC_TYPES,
    qualified_results=MappingProxyType({"strconv.Itoa": "string", "fmt.Sprintf": "string"}),
)


# --------------------------------------------------------------------------- binding rules

_GO_FUNCTIONS = frozenset({"function_declaration", "method_declaration", "func_literal"})
_GO_SCOPES: Mapping[str, ScopeKind] = MappingProxyType(
    {
        "source_file": "module",
        **{k: "function" for k in _GO_FUNCTIONS},
        "block": "block",
        "if_statement": "block",
        "for_statement": "block",
        "expression_switch_statement": "block",
        "type_switch_statement": "block",
        "select_statement": "block",
        "expression_case": "block",
        "default_case": "block",
        "type_case": "block",
        "communication_case": "block",
    }
)


class GoRules(TableScopes):
    """Bindings of Go: ``:=`` (re)declaration, package-level hoisting, block scopes.

    Scopes: package, funcs, blocks, if/for/switch headers and case clauses.
    """

    language = "go"
    scopes = _GO_SCOPES

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Functions, parameters, ``:=``, ``var``/``const`` specs, range variables."""
        kind = node.type
        if kind == "function_declaration":
            name = node.child_by_field_name("name")
            scope = scope_ancestor(node, _GO_SCOPES)
            if name is not None:
                yield Declaration(name, scope, "function", scope.start_byte, mutable=False)
        if kind in _GO_FUNCTIONS:
            for field in ("receiver", "parameters", "result"):
                params = node.child_by_field_name(field)
                if params is None or params.type != "parameter_list":
                    continue
                for param in params.named_children:
                    for name in param.children_by_field_name("name"):
                        yield Declaration(
                            name,
                            node,
                            "parameter",
                            node.start_byte,
                            type_node=param.child_by_field_name("type"),
                        )
        elif kind == "short_var_declaration":
            scope = scope_ancestor(node, _GO_SCOPES)
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            names = left.named_children if left is not None else []
            values = right.named_children if right is not None else []
            for index, name in enumerate(names):
                if name.type != "identifier":
                    continue
                value = values[index] if len(values) == len(names) else None
                yield Declaration(
                    name,
                    scope,
                    "variable",
                    node.end_byte,
                    value_node=value,
                    redeclare_as_write=True,
                )
        elif kind in ("var_spec", "const_spec"):
            scope = scope_ancestor(node, _GO_SCOPES)
            visible = scope.start_byte if scope.type == "source_file" else node.end_byte
            names = node.children_by_field_name("name")
            value_list = node.child_by_field_name("value")
            values = value_list.named_children if value_list is not None else []
            for index, name in enumerate(names):
                yield Declaration(
                    name,
                    scope,
                    "constant" if kind == "const_spec" else "variable",
                    visible,
                    type_node=node.child_by_field_name("type"),
                    value_node=values[index] if len(values) == len(names) else None,
                    mutable=kind == "var_spec",
                )
        elif kind == "range_clause" and any(c.type == ":=" for c in node.children):
            loop = node.parent or node
            body = loop.child_by_field_name("body")
            visible = body.start_byte if body is not None else node.end_byte
            left = node.child_by_field_name("left")
            for name in left.named_children if left is not None else []:
                if name.type == "identifier":
                    yield Declaration(name, loop, "variable", visible)
        elif kind == "type_switch_statement":
            alias = node.child_by_field_name("alias")
            for name in alias.named_children if alias is not None else []:
                yield Declaration(name, node, "variable", node.start_byte)

    def is_reference(self, node: Node) -> bool:
        """Excludes struct field keys in composite literals."""
        parent = node.parent
        if parent is None:
            return True
        if parent.type == "literal_element" and field_name(parent) == "key":
            literal = nearest(parent, frozenset({"composite_literal"}))
            literal_type = literal.child_by_field_name("type") if literal is not None else None
            # A struct literal's keys are field names; only map keys are values.
            return literal_type is not None and literal_type.type == "map_type"
        return True

    def access(self, node: Node) -> tuple[bool, bool]:
        """``=`` writes; ``+=``, ``++`` and ``&x`` read and write."""
        target, field = climb_targets(node, frozenset({"expression_list"}))
        parent = target.parent
        if parent is None:
            return True, False
        if parent.type == "assignment_statement" and field == "left":
            operator = parent.child_by_field_name("operator")
            plain = operator is not None and operator.type == "="
            return (not plain), True
        if parent.type in ("inc_statement", "dec_statement"):
            return True, True
        if parent.type == "range_clause" and field == "left":
            return False, True
        if parent.type == "unary_expression":
            operator = parent.child_by_field_name("operator")
            if operator is not None and operator.type == "&":
                return True, True
        return True, False


LANGUAGE: Final = Language(
    id=ID,
    aliases=("golang",),
    extensions=(".go",),
    grammar=Grammar("tree_sitter_go"),
    line_comment=COMMENT,
    lexical=LEXICAL,
    offside=False,
    block_nodes=frozenset({"block"}),
    outline=OUTLINE,
    spec=SPEC,
    binding_rules=GoRules,
    checker=Checker("go vet", _check),
    types=TYPES,
)
