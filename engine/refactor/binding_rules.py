"""Per-language declaration, scope and reference rules for :mod:`scopes`.

Each class answers, for one grammar, which nodes open scopes, which names a
node declares (and where they become visible), and which identifier leaves are
variable references rather than member names, labels, paths or types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from tree_sitter import Node

from engine.refactor.scopes import (
    BindingKind,
    BindingRules,
    Declaration,
    ScopeKind,
    field_name,
    nearest,
)


def _children(node: Node | None, field: str) -> list[Node]:
    return [] if node is None else node.children_by_field_name(field)


def _scope_ancestor(node: Node, kinds: Mapping[str, ScopeKind]) -> Node:
    """The closest strict ancestor of ``node`` that opens a scope (or the root)."""
    current = node.parent
    while current is not None:
        if current.type in kinds or current.parent is None:
            return current
        current = current.parent
    return node


def _has_child(node: Node, kind: str) -> bool:
    return any(child.type == kind for child in node.children)


def _climb_targets(node: Node, wrappers: frozenset[str]) -> tuple[Node, str | None]:
    """Climb through destructuring wrappers; return the outermost one and its field."""
    current = node
    while current.parent is not None and current.parent.type in wrappers:
        current = current.parent
    return current, field_name(current)


# --------------------------------------------------------------------------- Rust

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


class RustRules:
    """Bindings of Rust: ``let`` shadowing, patterns, closures, items in blocks."""

    language = "rust"
    reference_kinds = frozenset({"identifier"})
    skip_class_scopes_from_functions = False

    def scope_kind(self, node: Node) -> ScopeKind | None:
        """Scopes: crate/module, fn, closure, impl/trait, block, for, match arm."""
        return _RUST_SCOPES.get(node.type)

    def nonlocal_names(self, node: Node) -> Iterable[str]:
        """Rust has no ``global`` statements."""
        return ()

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Names declared by ``let``, parameters, patterns, items and ``use``."""
        kind = node.type
        if kind == "let_declaration":
            pattern = node.child_by_field_name("pattern")
            let_mut = _has_child(node, "mutable_specifier")
            for name, mutable in self.pattern_names(pattern):
                yield Declaration(
                    name,
                    _scope_ancestor(node, _RUST_SCOPES),
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
                param_mut = _has_child(param, "mutable_specifier")
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
            scope = _scope_ancestor(node, _RUST_SCOPES)
            for name in self._use_names(node.child_by_field_name("argument")):
                yield Declaration(name, scope, "import", scope.start_byte)

    def _item_name(self, node: Node, kind: BindingKind) -> Iterable[Declaration]:
        name = node.child_by_field_name("name")
        scope = _scope_ancestor(node, _RUST_SCOPES)
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
                field_mut = mutable or _has_child(node, "mutable_specifier")
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
        target, field = _climb_targets(node, frozenset({"tuple_expression", "array_expression"}))
        parent = target.parent
        if parent is None:
            return True, False
        if parent.type == "assignment_expression" and field == "left":
            return False, True
        if parent.type == "compound_assignment_expr" and field == "left":
            return True, True
        if parent.type == "reference_expression" and _has_child(parent, "mutable_specifier"):
            return True, True
        return True, False


# ------------------------------------------------------------------------- Python

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


class PythonRules:
    """Bindings of Python: function-level scopes, class scopes hidden from methods."""

    language = "python"
    reference_kinds = frozenset({"identifier"})
    skip_class_scopes_from_functions = True

    def scope_kind(self, node: Node) -> ScopeKind | None:
        """Scopes: module, def, lambda, class, comprehensions."""
        return _PY_SCOPES.get(node.type)

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
                scope = _scope_ancestor(node, _PY_SCOPES)
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
        target, field = _climb_targets(node, _PY_TARGET_WRAPPERS)
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


# ---------------------------------------------------------- JavaScript/TypeScript

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


class JavaScriptRules:
    """Bindings of JavaScript and TypeScript: ``var`` hoisting, block-scoped ``let``/``const``."""

    reference_kinds = frozenset({"identifier", "shorthand_property_identifier"})
    skip_class_scopes_from_functions = False

    def __init__(self, language: str) -> None:
        self.language = language

    def scope_kind(self, node: Node) -> ScopeKind | None:
        """Scopes: program, functions, classes, blocks, loops, catch, switch."""
        return _JS_SCOPES.get(node.type)

    def nonlocal_names(self, node: Node) -> Iterable[str]:
        """JavaScript has no ``global`` statements."""
        return ()

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
        target, field = _climb_targets(node, _JS_TARGET_WRAPPERS)
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


# ----------------------------------------------------------------------------- Go

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


class GoRules:
    """Bindings of Go: ``:=`` (re)declaration, package-level hoisting, block scopes."""

    language = "go"
    reference_kinds = frozenset({"identifier"})
    skip_class_scopes_from_functions = False

    def scope_kind(self, node: Node) -> ScopeKind | None:
        """Scopes: package, funcs, blocks, if/for/switch headers and case clauses."""
        return _GO_SCOPES.get(node.type)

    def nonlocal_names(self, node: Node) -> Iterable[str]:
        """Go has no ``global`` statements."""
        return ()

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Functions, parameters, ``:=``, ``var``/``const`` specs, range variables."""
        kind = node.type
        if kind == "function_declaration":
            name = node.child_by_field_name("name")
            scope = _scope_ancestor(node, _GO_SCOPES)
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
            scope = _scope_ancestor(node, _GO_SCOPES)
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
            scope = _scope_ancestor(node, _GO_SCOPES)
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
        target, field = _climb_targets(node, frozenset({"expression_list"}))
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


# --------------------------------------------------------------------------- Java

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


class JavaRules:
    """Bindings of Java: locals, parameters, lambda parameters and fields."""

    language = "java"
    reference_kinds = frozenset({"identifier"})
    skip_class_scopes_from_functions = False

    def scope_kind(self, node: Node) -> ScopeKind | None:
        """Scopes: classes, methods, lambdas, blocks, loops, catch, try-with-resources."""
        return _JAVA_SCOPES.get(node.type)

    def nonlocal_names(self, node: Node) -> Iterable[str]:
        """Java has no ``global`` statements."""
        return ()

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
            scope = _scope_ancestor(node, _JAVA_SCOPES)
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
                scope = _scope_ancestor(node, _JAVA_SCOPES)
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


def rules_for(language: str) -> BindingRules:
    """The binding rules of a canonical language name."""
    if language == "rust":
        return RustRules()
    if language == "python":
        return PythonRules()
    if language in ("typescript", "tsx", "javascript"):
        return JavaScriptRules(language)
    if language == "go":
        return GoRules()
    if language == "java":
        return JavaRules()
    raise ValueError(f"no binding rules for {language}")
