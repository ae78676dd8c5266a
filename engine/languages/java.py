"""Java: names, grammar, post-processing rules, refactoring facts, checker, type tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

from tree_sitter import Node

from engine.languages.base import (
    Checker,
    CheckerCommand,
    Grammar,
    Language,
    LanguageSpec,
    Outline,
    TypeTables,
)
from engine.languages.lexical import C_LIKE
from engine.languages.scoping import (
    Declaration,
    ScopeKind,
    TableScopes,
    field_name,
    nearest,
    scope_ancestor,
)
from engine.languages.words import ANY, names

ID: Final = "java"
COMMENT: Final = "//"

_TYPE_DECLARATIONS = frozenset(
    {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}
)
OUTLINE: Final = Outline(
    imports=frozenset({"import_declaration"}),
    scopes=_TYPE_DECLARATIONS | {"method_declaration", "constructor_declaration"},
    functions=frozenset({"method_declaration", "constructor_declaration"}),
    definitions=_TYPE_DECLARATIONS
    | {"method_declaration", "constructor_declaration", "field_declaration"},
    containers=_TYPE_DECLARATIONS,
    wrappers=frozenset(),
)

_KEYWORDS = names(
    """
    abstract assert boolean break byte case catch char class const continue default do
    double else enum extends final finally float for goto if implements import instanceof int
    interface long native new package private protected public return short static strictfp
    super switch synchronized this throw throws transient try void volatile while true false
    null var yield record sealed permits"""
)
_AVOID = names("String Object Math System Integer Long Double Boolean")

SPEC: Final = LanguageSpec(
    name=ID,
    case="camel",
    comment=COMMENT,
    keywords=_KEYWORDS,
    avoid=_AVOID,
    identifier_extra="$",
    indent_unit="    ",
    statement_containers=frozenset({"block", "switch_block_statement_group", "constructor_body"}),
    expression_kinds=names(
        """
        binary_expression instanceof_expression lambda_expression ternary_expression
        unary_expression cast_expression switch_expression class_literal identifier
        parenthesized_expression object_creation_expression field_access array_access
        method_invocation method_reference array_creation_expression string_literal
        character_literal true false decimal_integer_literal hex_integer_literal
        octal_integer_literal binary_integer_literal decimal_floating_point_literal
        hex_floating_point_literal"""
    ),
    not_extractable=frozenset(
        {"assignment_expression", "update_expression", "this", "super", "null_literal"}
    ),
    expression_statements=frozenset({"expression_statement"}),
    functions=frozenset({"method_declaration", "constructor_declaration"}),
    lambdas=frozenset({"lambda_expression"}),
    loops=MappingProxyType(
        {
            "while_statement": frozenset(),
            "do_statement": frozenset(),
            "for_statement": frozenset({"init"}),
            "enhanced_for_statement": frozenset({"value"}),
        }
    ),
    branches=MappingProxyType(
        {
            "ternary_expression": frozenset({"consequence", "alternative"}),
            "if_statement": frozenset({"alternative"}),
            "switch_rule": ANY,
        }
    ),
    short_circuit=frozenset({"&&", "||"}),
    string_kinds=frozenset({"string_literal"}),
    comment_kinds=frozenset({"line_comment", "block_comment"}),
    call_kinds=frozenset({"method_invocation", "object_creation_expression"}),
    same_line_separator=" ",
    binding_prompt_prefix="var ",
    function_prompt_prefix="private static void ",
    binding_template="{type} {name} = {expression};",
    untyped_binding_type="var",
)

_PUBLIC_TYPE = re.compile(
    r"\bpublic\s+(?:(?:final|abstract|sealed|non-sealed|strictfp)\s+)*"
    r"(?:class|interface|enum|record)\s+([A-Za-z_$][\w$]*)"
)
_ANY_TYPE = re.compile(r"\b(?:class|interface|enum|record)\s+[A-Za-z_$][\w$]*")


def _check(code: str, directory: str) -> CheckerCommand | str:
    if not _ANY_TYPE.search(code):
        return "not a complete Java compilation unit (no class)"
    # javac insists that a public type lives in the file named after it.
    match = _PUBLIC_TYPE.search(code)
    name = f"{match.group(1)}.java" if match else "Snippet.java"
    argv = ("javac", "-d", str(Path(directory, "classes")), "-proc:none", "-nowarn", name)
    return CheckerCommand(name, argv)


TYPES: Final = TypeTables(
    boolean="boolean",
    # Integer and floating-point literals take their type from a suffix (type_inference).
    literals=MappingProxyType(
        {
            "string_literal": "String",
            "character_literal": "char",
            "true": "boolean",
            "false": "boolean",
        }
    ),
    method_results=MappingProxyType(
        {
            "length": "int",
            "size": "int",
            "indexOf": "int",
            "compareTo": "int",
            "hashCode": "int",
            "equals": "boolean",
            "isEmpty": "boolean",
            "contains": "boolean",
            "startsWith": "boolean",
            "endsWith": "boolean",
            "toString": "String",
            "substring": "String",
            "trim": "String",
            "toUpperCase": "String",
            "toLowerCase": "String",
        }
    ),
    numeric_rank=MappingProxyType(
        {"byte": 0, "short": 1, "char": 1, "int": 2, "long": 3, "float": 4, "double": 5}
    ),
)


# --------------------------------------------------------------------------- binding rules

_JAVA_CLASSES = frozenset(
    {
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "annotation_type_declaration",
    }
)
_JAVA_FUNCTIONS = frozenset(
    {
        "method_declaration",
        "constructor_declaration",
        "compact_constructor_declaration",
        "lambda_expression",
    }
)
_JAVA_SCOPES: Mapping[str, ScopeKind] = MappingProxyType(
    {
        "program": "module",
        **{k: "class" for k in _JAVA_CLASSES},
        **{k: "function" for k in _JAVA_FUNCTIONS},
        "block": "block",
        "constructor_body": "block",
        "for_statement": "block",
        "enhanced_for_statement": "block",
        "catch_clause": "block",
        "try_with_resources_statement": "block",
        "switch_block": "block",
    }
)
_JAVA_NAME_OWNERS = frozenset(
    _JAVA_CLASSES
    | {
        "method_declaration",
        "constructor_declaration",
        "compact_constructor_declaration",
        "marker_annotation",
        "annotation",
        "enum_constant",
    }
)


class JavaRules(TableScopes):
    """Bindings of Java: locals, parameters, lambda parameters and fields.

    Scopes: classes, methods, lambdas, blocks, loops, catch, try-with-resources.
    """

    language = "java"
    scopes = _JAVA_SCOPES

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Locals, parameters, fields, loop, catch, resource and pattern variables."""
        kind = node.type
        if kind in _JAVA_FUNCTIONS:
            params = node.child_by_field_name("parameters")
            if params is not None and params.type == "identifier":  # `v -> ...`
                yield Declaration(params, node, "parameter", node.start_byte)
                params = None
            for param in params.named_children if params is not None else ():
                if param.type == "identifier":
                    yield Declaration(param, node, "parameter", node.start_byte)
                    continue
                name = param.child_by_field_name("name")
                if name is None:
                    declarator = next(
                        (c for c in param.named_children if c.type == "variable_declarator"), None
                    )
                    name = declarator.child_by_field_name("name") if declarator else None
                if name is not None:
                    yield Declaration(
                        name,
                        node,
                        "parameter",
                        node.start_byte,
                        type_node=param.child_by_field_name("type"),
                    )
        elif kind in ("local_variable_declaration", "field_declaration", "constant_declaration"):
            local = kind == "local_variable_declaration"
            scope = scope_ancestor(node, _JAVA_SCOPES)
            declared_type = node.child_by_field_name("type")
            if declared_type is not None and declared_type.text == b"var":
                declared_type = None
            final = any(
                m.type == "modifiers" and b"final" in (m.text or b"") for m in node.children
            )
            for declarator in node.children_by_field_name("declarator"):
                name = declarator.child_by_field_name("name")
                if name is None:
                    continue
                yield Declaration(
                    name,
                    scope,
                    "variable" if local else "field",
                    declarator.start_byte if local else scope.start_byte,
                    type_node=declared_type,
                    value_node=declarator.child_by_field_name("value"),
                    mutable=not final,
                )
        elif kind == "enhanced_for_statement":
            name = node.child_by_field_name("name")
            body = node.child_by_field_name("body")
            if name is not None:
                yield Declaration(
                    name,
                    node,
                    "variable",
                    body.start_byte if body is not None else node.end_byte,
                    type_node=node.child_by_field_name("type"),
                )
        elif kind in ("catch_formal_parameter", "resource"):
            name = node.child_by_field_name("name")
            owner = nearest(node, frozenset({"catch_clause", "try_with_resources_statement"}))
            if name is not None and owner is not None:
                yield Declaration(name, owner, "variable", node.end_byte)
        elif kind == "instanceof_expression":
            name = node.child_by_field_name("name")
            if name is not None:
                scope = scope_ancestor(node, _JAVA_SCOPES)
                yield Declaration(
                    name,
                    scope,
                    "variable",
                    node.end_byte,
                    type_node=node.child_by_field_name("right"),
                )
        elif kind == "inferred_parameters":
            owner = node.parent or node
            for name in node.named_children:
                yield Declaration(name, owner, "parameter", owner.start_byte)
        if kind == "record_declaration":
            params = node.child_by_field_name("parameters")
            for param in params.named_children if params is not None else ():
                name = param.child_by_field_name("name")
                if name is not None:
                    yield Declaration(name, node, "field", node.start_byte)

    def is_reference(self, node: Node) -> bool:
        """Excludes method names, member names, type/label names and import paths."""
        parent = node.parent
        if parent is None:
            return True
        field = field_name(node)
        if parent.type == "method_invocation" and field == "name":
            return False
        if parent.type == "field_access" and field == "field":
            return False
        if parent.type in _JAVA_NAME_OWNERS and field == "name":
            return False
        if parent.type in ("scoped_identifier", "labeled_statement"):
            return False
        if parent.type in ("break_statement", "continue_statement", "element_value_pair"):
            return False
        if parent.type == "method_reference" and parent.named_children[0].id != node.id:
            return False
        return nearest(parent, frozenset({"import_declaration", "package_declaration"})) is None

    def access(self, node: Node) -> tuple[bool, bool]:
        """``=`` writes; compound assignment and ``++`` read and write."""
        parent = node.parent
        if parent is None:
            return True, False
        if parent.type == "assignment_expression" and field_name(node) == "left":
            operator = parent.child_by_field_name("operator")
            plain = operator is not None and operator.type == "="
            return (not plain), True
        if parent.type == "update_expression":
            return True, True
        return True, False


LANGUAGE: Final = Language(
    id=ID,
    aliases=(),
    extensions=(".java",),
    grammar=Grammar("tree_sitter_java"),
    line_comment=COMMENT,
    lexical=C_LIKE,
    offside=False,
    block_nodes=frozenset({"block", "class_body", "constructor_body", "interface_body"}),
    outline=OUTLINE,
    spec=SPEC,
    binding_rules=JavaRules,
    checker=Checker("javac", _check),
    types=TYPES,
)
