"""Best-effort static types for the statically typed languages (Rust, Go, Java, TypeScript).

Extracting a function needs parameter and return types; a Java local needs a
declared type. Types come from declarations first, then from the shape of
initializers (literals, operators, constructors, same-file function signatures,
a few well-known methods). Anything else is ``None``: callers refuse or leave the
annotation out rather than guess. The per-language tables (literal kinds, method
results, conversions) are each language's ``TypeTables`` in ``engine.languages``.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from tree_sitter import Node

from engine import languages
from engine.languages.base import TypeTables
from engine.refactor.scopes import Binding, Occurrence, ScopeAnalysis
from engine.syntax import SyntaxDocument

_COMPARISONS = frozenset(
    {"==", "!=", "<", ">", "<=", ">=", "===", "!==", "&&", "||", "instanceof", "in"}
)
_RUST_INT_SUFFIX = re.compile(r"(i8|i16|i32|i64|i128|isize|u8|u16|u32|u64|u128|usize)$")
_RUST_FLOAT_SUFFIX = re.compile(r"(f32|f64)$")
_RUST_UNTYPED = frozenset({"integer_literal", "float_literal"})
# A language without type tables (Python) infers no literal or method types.
_NO_TYPES = TypeTables(boolean="boolean", literals=MappingProxyType({}))


class TypeOracle:
    """Types of bindings and expressions in one parsed document."""

    def __init__(self, document: SyntaxDocument, analysis: ScopeAnalysis) -> None:
        self.document = document
        self.language = document.language
        self._types = languages.get(document.language).types or _NO_TYPES
        self._analysis = analysis
        self._by_node: dict[int, Occurrence] = {o.node.id: o for o in analysis.occurrences}
        self._returns: dict[str, str] | None = None
        self._visiting: set[int] = set()

    def of_binding(self, binding: Binding) -> str | None:
        """The declared or initializer-inferred type of a binding."""
        declared = binding.type_node
        name = binding.declarations[0]
        owner = name.parent
        if declared is not None and owner is not None:
            owners = {owner.id}
            if owner.type == "variable_declarator" and owner.parent is not None:
                owners.add(owner.parent.id)
            # A type written for a whole pattern, `(a, b): (i32, i32)`, is not each name's.
            if declared.parent is not None and declared.parent.id in owners:
                text = self.document.node_text(declared).strip()
                return text[1:].strip() if text.startswith(":") else text
        if binding.value_node is not None and id(binding) not in self._visiting:
            self._visiting.add(id(binding))
            try:
                if self.language == "rust" and binding.value_node.type in _RUST_UNTYPED:
                    text = self.document.node_text(binding.value_node)
                    if not (_RUST_INT_SUFFIX.search(text) or _RUST_FLOAT_SUFFIX.search(text)):
                        # `let mut n = 0;` takes its type from how `n` is used.
                        used = self._usage_type(binding)
                        if used is not None:
                            return used
                return self.of_expression(binding.value_node)
            finally:
                self._visiting.discard(id(binding))
        return None

    def _usage_type(self, binding: Binding) -> str | None:
        """The type of the other operand wherever the binding meets a typed value."""
        for occurrence in self._analysis.occurrences_of(binding):
            node, parent = occurrence.node, occurrence.node.parent
            if occurrence.declares or parent is None:
                continue
            if parent.type not in ("binary_expression", "compound_assignment_expr"):
                continue
            operator = parent.child_by_field_name("operator")
            if operator is not None and self.document.node_text(operator) in ("<<", ">>"):
                continue
            left, right = parent.child_by_field_name("left"), parent.child_by_field_name("right")
            other = right if left is not None and left.id == node.id else left
            if other is None or other.type in _RUST_UNTYPED:
                continue
            found = self.of_expression(other)
            if found is not None and found != "bool":
                return found
        return None

    def of_expression(self, node: Node) -> str | None:
        """The type of an expression, when its shape tells."""
        language = self.language
        kind = node.type
        text = self.document.node_text(node)
        named = node.named_children
        literal = self._literal(kind, text)
        if literal is not None:
            return literal
        if kind == "identifier":
            occurrence = self._by_node.get(node.id)
            if occurrence is not None and occurrence.binding is not None:
                return self.of_binding(occurrence.binding)
            return None
        if kind in ("parenthesized_expression", "expression_statement") and named:
            return self.of_expression(named[0])
        if kind in ("binary_expression",):
            return self._binary(node)
        if kind == "unary_expression":
            operator = node.child_by_field_name("operator")
            symbol = self.document.node_text(operator) if operator is not None else text[:1]
            operand = node.child_by_field_name("operand") or node.child_by_field_name("argument")
            if symbol == "!":
                return self._bool()
            if symbol == "&" and language == "go" and operand is not None:
                inner = self.of_expression(operand)
                return f"*{inner}" if inner else None
            if symbol == "*" and language == "rust" and operand is not None:
                inner = self.of_expression(operand)
                return inner[1:].strip() if inner and inner.startswith("&") else None
            return self.of_expression(operand) if operand is not None else None
        if kind == "reference_expression" and named:
            inner = self.of_expression(named[-1])
            mutable = any(c.type == "mutable_specifier" for c in node.children)
            return f"&{'mut ' if mutable else ''}{inner}" if inner else None
        if kind in ("type_cast_expression", "cast_expression"):
            target = node.child_by_field_name("type")
            return self.document.node_text(target) if target is not None else None
        if kind in ("struct_expression",):
            name = node.child_by_field_name("name")
            return self.document.node_text(name) if name is not None else None
        if kind in ("composite_literal",):
            target = node.child_by_field_name("type")
            return self.document.node_text(target) if target is not None else None
        if kind == "object_creation_expression":
            target = node.child_by_field_name("type")
            written = self.document.node_text(target) if target is not None else ""
            return written if written and "<>" not in written else None
        if kind == "new_expression" and language != "java":
            target = node.child_by_field_name("constructor")
            return self.document.node_text(target) if target is not None else None
        if kind in ("if_expression", "block"):
            return self._block_value(node)
        if kind == "ternary_expression":
            branch = node.child_by_field_name("consequence")
            return self.of_expression(branch) if branch is not None else None
        if kind == "tuple_expression" and language == "rust":
            parts = [self.of_expression(c) for c in named]
            return f"({', '.join(p for p in parts if p)})" if all(parts) else None
        if kind == "macro_invocation" and language == "rust":
            macro = node.child_by_field_name("macro")
            return "String" if macro is not None and macro.text == b"format" else None
        if kind in ("call_expression", "method_invocation"):
            return self._call(node)
        return None

    def _bool(self) -> str:
        return self._types.boolean

    def _literal(self, kind: str, text: str) -> str | None:
        language = self.language
        if language == "rust":
            if kind == "integer_literal":
                match = _RUST_INT_SUFFIX.search(text)
                return match.group(1) if match else "i32"
            if kind == "float_literal":
                match = _RUST_FLOAT_SUFFIX.search(text)
                return match.group(1) if match else "f64"
        elif language == "java":
            if kind.endswith("integer_literal"):
                return "long" if text.endswith(("l", "L")) else "int"
            if kind.endswith("floating_point_literal"):
                return "float" if text.endswith(("f", "F")) else "double"
        return self._types.literals.get(kind)

    def _binary(self, node: Node) -> str | None:
        operator = node.child_by_field_name("operator")
        symbol = self.document.node_text(operator) if operator is not None else ""
        if symbol in _COMPARISONS:
            return self._bool()
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        types = [self.of_expression(side) for side in (left, right) if side is not None]
        known = [t for t in types if t]
        if not known:
            return None
        if self.language == "java":
            if "String" in known and symbol == "+":
                return "String"
            rank = self._types.numeric_rank
            ranked = [t for t in known if t in rank]
            if ranked:
                widest = max(ranked, key=lambda t: rank[t])
                return "int" if rank[widest] < 2 else widest
        if self.language in ("typescript", "tsx", "javascript") and "string" in known:
            return "string" if symbol == "+" else "number"
        # A literal operand adapts to the other side (`x * 2` has the type of `x`).
        literal_kinds = {"integer_literal", "float_literal", "int_literal", "number"}
        for side, side_type in zip((left, right), types, strict=False):
            if side is not None and side_type and side.type not in literal_kinds:
                return side_type
        return known[0]

    def _block_value(self, node: Node) -> str | None:
        block = node.child_by_field_name("consequence") if node.type == "if_expression" else node
        if block is None or not block.named_children:
            return None
        tail = block.named_children[-1]
        if tail.type == "expression_statement" and not self.document.node_text(tail).endswith(";"):
            return self.of_expression(tail)
        if tail.type in ("expression_statement", "let_declaration"):
            return None
        return self.of_expression(tail)

    def _call(self, node: Node) -> str | None:
        callee = node.child_by_field_name("function")
        name_node = node.child_by_field_name("name")
        receiver: Node | None = node.child_by_field_name("object")
        if callee is not None:
            member = (
                callee.child_by_field_name("field")
                or callee.child_by_field_name("property")
                or callee.child_by_field_name("name")
            )
            if member is not None and callee.type != "scoped_identifier":
                receiver = callee.child_by_field_name("value") or callee.child_by_field_name(
                    "object"
                )
                receiver = receiver or callee.child_by_field_name("operand")
                name_node = member
            elif callee.type == "scoped_identifier":
                path = self.document.node_text(callee)
                if path in ("String::from", "String::new"):
                    return "String"
                return None
            else:
                name_node = callee
        if name_node is None:
            return None
        name = self.document.node_text(name_node)
        types = self._types
        if receiver is None:
            if name in types.function_results:
                return types.function_results[name]
            if name in types.conversions:
                return name
            return self._return_types().get(name)
        if name in types.method_results:
            return types.method_results[name]
        if name in types.same_as_receiver:
            return self.of_expression(receiver)
        return types.qualified_results.get(f"{self.document.node_text(receiver)}.{name}")

    def _return_types(self) -> dict[str, str]:
        if self._returns is None:
            self._returns = {}
            stack = [self.document.tree.root_node]
            while stack:
                node = stack.pop()
                stack.extend(node.named_children)
                name = node.child_by_field_name("name")
                if name is None:
                    continue
                returned = self.function_return_type(node)
                if returned is not None:
                    self._returns.setdefault(self.document.node_text(name), returned)
        return self._returns

    def function_return_type(self, node: Node) -> str | None:
        """The declared return type of a function node (``None``: none or unknown)."""
        kind = node.type
        if kind == "function_item":
            returned = node.child_by_field_name("return_type")
        elif kind in ("function_declaration", "method_declaration") and self.language == "go":
            returned = node.child_by_field_name("result")
        elif kind == "method_declaration":
            returned = node.child_by_field_name("type")
        elif kind in ("function_declaration", "method_definition", "arrow_function"):
            returned = node.child_by_field_name("return_type")
        else:
            return None
        if returned is None:
            return None
        text = self.document.node_text(returned).strip()
        return text[1:].strip() if text.startswith(":") else text
