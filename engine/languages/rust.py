"""Rust: names, grammar, post-processing rules, refactoring facts, checker, type tables."""

from __future__ import annotations

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
    BindingKind,
    Declaration,
    ScopeKind,
    TableScopes,
    climb_targets,
    field_name,
    has_child,
    nearest,
    scope_ancestor,
)
from engine.languages.words import ANY, names

ID: Final = "rust"
COMMENT: Final = "//"

# `'` starts a char literal or a lifetime, never a string; only `"` strings span lines.
LEXICAL: Final = LexicalRules(
    (COMMENT,), ("/*", "*/"), ('"', "'"), frozenset({'"'}), char_literals=True
)

OUTLINE: Final = Outline(
    imports=frozenset({"use_declaration", "extern_crate_declaration"}),
    scopes=frozenset({"function_item", "impl_item", "trait_item", "mod_item"}),
    functions=frozenset({"function_item", "function_signature_item"}),
    definitions=frozenset(
        {
            "function_item",
            "function_signature_item",
            "struct_item",
            "enum_item",
            "union_item",
            "trait_item",
            "type_item",
            "const_item",
            "static_item",
            "macro_definition",
        }
    ),
    containers=frozenset({"impl_item", "trait_item", "mod_item"}),
    wrappers=frozenset(),
)

_KEYWORDS = names(
    """
    as async await break const continue crate dyn else enum extern false fn for if impl in
    let loop match mod move mut pub ref return self Self static struct super trait true type
    unsafe use where while abstract become box do final macro override priv typeof unsized
    virtual yield try gen union"""
)
_AVOID = names("Some None Ok Err Vec String Box Option Result drop main std core alloc")

SPEC: Final = LanguageSpec(
    name=ID,
    case="snake",
    comment=COMMENT,
    keywords=_KEYWORDS,
    avoid=_AVOID,
    identifier_extra="",
    indent_unit="    ",
    statement_containers=frozenset({"block"}),
    expression_kinds=names(
        """
        array_expression async_block await_expression binary_expression
        call_expression closure_expression field_expression generic_function identifier
        if_expression index_expression macro_invocation match_expression
        parenthesized_expression range_expression reference_expression scoped_identifier
        struct_expression try_expression tuple_expression type_cast_expression
        unary_expression unsafe_block boolean_literal char_literal float_literal
        integer_literal raw_string_literal string_literal"""
    ),
    not_extractable=names(
        """
        assignment_expression compound_assignment_expr break_expression
        continue_expression return_expression yield_expression block self
        for_expression while_expression loop_expression unit_expression"""
    ),
    expression_statements=frozenset({"expression_statement"}),
    functions=frozenset({"function_item"}),
    lambdas=frozenset({"closure_expression"}),
    loops=MappingProxyType(
        {
            "while_expression": frozenset(),
            "loop_expression": frozenset(),
            "for_expression": frozenset({"value"}),
        }
    ),
    branches=MappingProxyType({"else_clause": ANY, "match_arm": ANY, "match_block": ANY}),
    short_circuit=frozenset({"&&", "||"}),
    string_kinds=frozenset({"string_literal", "raw_string_literal"}),
    comment_kinds=frozenset({"line_comment", "block_comment"}),
    call_kinds=frozenset({"call_expression", "macro_invocation"}),
    same_line_separator=" ",
    binding_prompt_prefix="let ",
    function_prompt_prefix="fn ",
    binding_template="let {name} = {expression};",
)


def _check(code: str, directory: str) -> CheckerCommand | str:
    # A library crate, metadata only: type-checks without linking or a `main`.
    argv: tuple[str, ...] = ("rustc", "--edition", "2021", "--crate-type", "lib", "--emit=metadata")
    argv += ("-A", "warnings", "--out-dir", directory, "snippet.rs")
    return CheckerCommand("snippet.rs", argv)


TYPES: Final = TypeTables(
    boolean="bool",
    # Integer and float literals take their type from a suffix (type_inference).
    literals=MappingProxyType(
        {
            "boolean_literal": "bool",
            "string_literal": "&str",
            "raw_string_literal": "&str",
            "char_literal": "char",
        }
    ),
    method_results=MappingProxyType(
        {
            "len": "usize",
            "count": "usize",
            "is_empty": "bool",
            "contains": "bool",
            "starts_with": "bool",
            "ends_with": "bool",
            "to_string": "String",
            "to_uppercase": "String",
            "to_lowercase": "String",
        }
    ),
    same_as_receiver=frozenset({"clone", "abs", "min", "max", "pow", "to_owned"}),
)


# --------------------------------------------------------------------------- binding rules

_RUST_SCOPES: Mapping[str, ScopeKind] = MappingProxyType(
    {
        "source_file": "module",
        "mod_item": "module",
        "function_item": "function",
        "closure_expression": "function",
        "impl_item": "class",
        "trait_item": "class",
        "block": "block",
        "for_expression": "block",
        "match_arm": "block",
    }
)
_RUST_NOT_REFERENCE_PARENTS = frozenset(
    {
        "scoped_identifier",
        "scoped_type_identifier",
        "scoped_use_list",
        "use_list",
        "use_as_clause",
        "use_declaration",
        "use_wildcard",
        "label",
        "lifetime",
        "enum_variant",
        "mod_item",
        "macro_definition",
        "extern_crate_declaration",
        "function_signature_item",
        "const_parameter",
        "attribute",
        "meta_item",
    }
)
_RUST_PATTERN_SKIP = frozenset(
    {
        "scoped_identifier",
        "range_pattern",
        "remaining_field_pattern",
        "string_literal",
        "raw_string_literal",
        "char_literal",
        "integer_literal",
        "float_literal",
        "boolean_literal",
        "negative_literal",
        "macro_invocation",
        "generic_pattern",
    }
)


class RustRules(TableScopes):
    """Bindings of Rust: ``let`` shadowing, patterns, closures, items in blocks.

    Scopes: crate/module, fn, closure, impl/trait, block, for, match arm.
    """

    language = "rust"
    scopes = _RUST_SCOPES

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Names declared by ``let``, parameters, patterns, items and ``use``."""
        kind = node.type
        if kind == "let_declaration":
            pattern = node.child_by_field_name("pattern")
            let_mut = has_child(node, "mutable_specifier")
            for name, mutable in self.pattern_names(pattern):
                yield Declaration(
                    name,
                    scope_ancestor(node, _RUST_SCOPES),
                    "variable",
                    node.end_byte,
                    type_node=node.child_by_field_name("type"),
                    value_node=node.child_by_field_name("value") if pattern is name else None,
                    mutable=let_mut or mutable,
                )
        elif kind in ("function_item", "closure_expression"):
            if kind == "function_item":
                yield from self._item_name(node, "function")
            params = node.child_by_field_name("parameters")
            for param in params.named_children if params is not None else ():
                if param.type == "self_parameter":
                    continue
                pattern = param.child_by_field_name("pattern") or param
                param_mut = has_child(param, "mutable_specifier")
                for name, mutable in self.pattern_names(pattern):
                    yield Declaration(
                        name,
                        node,
                        "parameter",
                        node.start_byte,
                        type_node=param.child_by_field_name("type"),
                        mutable=param_mut or mutable,
                    )
        elif kind in ("const_item", "static_item"):
            yield from self._item_name(node, "constant")
        elif kind == "for_expression":
            body = node.child_by_field_name("body")
            visible = body.start_byte if body is not None else node.end_byte
            for name, mutable in self.pattern_names(node.child_by_field_name("pattern")):
                yield Declaration(name, node, "variable", visible, mutable=mutable)
        elif kind == "match_arm":
            pattern = node.child_by_field_name("pattern")
            inner = pattern.named_children[0] if pattern and pattern.named_children else None
            for name, mutable in self.pattern_names(inner):
                yield Declaration(name, node, "variable", node.start_byte, mutable=mutable)
        elif kind == "let_condition":
            owner = nearest(node, frozenset({"if_expression", "while_expression"}))
            block = None
            if owner is not None:
                block = owner.child_by_field_name("consequence") or owner.child_by_field_name(
                    "body"
                )
            if block is not None:
                for name, mutable in self.pattern_names(node.child_by_field_name("pattern")):
                    yield Declaration(name, block, "variable", block.start_byte, mutable=mutable)
        elif kind == "use_declaration":
            scope = scope_ancestor(node, _RUST_SCOPES)
            for name in self._use_names(node.child_by_field_name("argument")):
                yield Declaration(name, scope, "import", scope.start_byte)

    def _item_name(self, node: Node, kind: BindingKind) -> Iterable[Declaration]:
        name = node.child_by_field_name("name")
        scope = scope_ancestor(node, _RUST_SCOPES)
        # Associated functions are reached through `Self::` or a value, never by bare name.
        if name is None or name.type != "identifier" or scope.type in ("impl_item", "trait_item"):
            return
        yield Declaration(
            name,
            scope,
            kind,
            scope.start_byte,
            type_node=node.child_by_field_name("type"),
            value_node=node.child_by_field_name("value"),
            mutable=False,
        )

    def pattern_names(self, pattern: Node | None) -> list[tuple[Node, bool]]:
        """Identifiers a pattern binds, with whether each is ``mut``."""
        found: list[tuple[Node, bool]] = []
        if pattern is None:
            return found
        stack: list[tuple[Node, bool]] = [(pattern, False)]
        while stack:
            node, mutable = stack.pop()
            kind = node.type
            if kind == "identifier":
                # By convention an upper-case name in a pattern is a constant or a
                # unit variant (`None`, `MAX`), which matches rather than binds.
                text = node.text.decode("utf-8", "replace") if node.text else ""
                if text and not text[0].isupper():
                    found.append((node, mutable))
            elif kind == "shorthand_field_identifier":
                found.append((node, mutable))
            elif kind in _RUST_PATTERN_SKIP:
                continue
            elif kind == "mut_pattern":
                stack.extend((c, True) for c in reversed(node.named_children))
            elif kind == "field_pattern":
                inner = node.child_by_field_name("pattern")
                name = node.child_by_field_name("name")
                field_mut = mutable or has_child(node, "mutable_specifier")
                if inner is not None:
                    stack.append((inner, field_mut))
                elif name is not None:
                    stack.append((name, field_mut))
            else:
                # `Some(x)` / `Point { .. }`: the type path matches, the rest binds.
                type_path = node.child_by_field_name("type")
                skip = type_path.id if type_path is not None else -1
                stack.extend(
                    (child, mutable) for child in reversed(node.named_children) if child.id != skip
                )
        found.sort(key=lambda item: item[0].start_byte)
        return found

    def _use_names(self, node: Node | None) -> list[Node]:
        if node is None:
            return []
        if node.type == "identifier":
            return [node]
        if node.type == "scoped_identifier":
            name = node.child_by_field_name("name")
            return [name] if name is not None and name.type == "identifier" else []
        if node.type == "use_as_clause":
            alias = node.child_by_field_name("alias")
            return [alias] if alias is not None else []
        if node.type == "scoped_use_list":
            return self._use_names(node.child_by_field_name("list"))
        if node.type == "use_list":
            return [n for child in node.named_children for n in self._use_names(child)]
        return []

    def is_reference(self, node: Node) -> bool:
        """Excludes paths, macro names, labels, attributes and member-like tokens."""
        parent = node.parent
        if parent is None:
            return True
        if parent.type in _RUST_NOT_REFERENCE_PARENTS:
            return False
        if parent.type == "macro_invocation" and field_name(node) == "macro":
            return False
        if parent.type in ("tuple_struct_pattern", "struct_pattern") and field_name(node) == "type":
            return False
        if parent.type == "token_tree":
            # Inside macro arguments only tokens are known: skip `.field`,
            # `path::` segments and nested macro names.
            before, after = node.prev_sibling, node.next_sibling
            if before is not None and before.type in (".", "::"):
                return False
            if after is not None and after.type in ("::", "!"):
                return False
        return nearest(parent, frozenset({"attribute_item", "inner_attribute_item"})) is None

    def access(self, node: Node) -> tuple[bool, bool]:
        """Assignment targets write; compound assignment and ``&mut`` read and write."""
        target, field = climb_targets(node, frozenset({"tuple_expression", "array_expression"}))
        parent = target.parent
        if parent is None:
            return True, False
        if parent.type == "assignment_expression" and field == "left":
            return False, True
        if parent.type == "compound_assignment_expr" and field == "left":
            return True, True
        if parent.type == "reference_expression" and has_child(parent, "mutable_specifier"):
            return True, True
        return True, False


LANGUAGE: Final = Language(
    id=ID,
    aliases=("rs",),
    extensions=(".rs",),
    grammar=Grammar("tree_sitter_rust"),
    line_comment=COMMENT,
    lexical=LEXICAL,
    offside=False,
    block_nodes=frozenset({"block", "declaration_list", "field_declaration_list"}),
    outline=OUTLINE,
    spec=SPEC,
    binding_rules=RustRules,
    checker=Checker("rustc", _check),
    types=TYPES,
)
