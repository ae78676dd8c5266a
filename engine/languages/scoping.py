"""The vocabulary of per-language name-resolution rules, and helpers the rules share.

A language's binding rules (in its module of this package) say which nodes
open scopes, which names a node declares and which identifiers are variable
references; ``engine.refactor.scopes`` walks a tree with them. The types live
here, not in ``scopes``, so that the language modules need nothing from
``engine.refactor`` (which imports this package).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from tree_sitter import Node

ScopeKind = Literal["module", "function", "class", "block", "comprehension"]
BindingKind = Literal["variable", "parameter", "function", "class", "import", "constant", "field"]


@dataclass(frozen=True)
class Declaration:
    """A name a node introduces, and into which scope.

    ``scope_node`` must be a scope-opening node (or the analysed root);
    ``visible_from`` is the byte from which references see the binding.
    ``merge`` joins an existing binding of the same name in that scope (Python
    assignments, JavaScript ``var``); ``redeclare_as_write`` makes a repeated
    name an assignment instead (Go ``:=``).
    """

    name_node: Node
    scope_node: Node
    kind: BindingKind
    visible_from: int
    type_node: Node | None = None
    value_node: Node | None = None
    mutable: bool = True
    merge: bool = False
    reads: bool = False
    redeclare_as_write: bool = False


class BindingRules(Protocol):
    """What one language declares, scopes and references."""

    language: str
    reference_kinds: frozenset[str]
    skip_class_scopes_from_functions: bool

    def scope_kind(self, node: Node) -> ScopeKind | None:
        """The kind of scope ``node`` opens, if any."""
        ...

    def declarations(self, node: Node) -> Iterable[Declaration]:
        """Names ``node`` itself declares (not those of its descendants)."""
        ...

    def nonlocal_names(self, node: Node) -> Iterable[str]:
        """Names a ``global``/``nonlocal`` statement hands to outer scopes."""
        ...

    def is_reference(self, node: Node) -> bool:
        """Whether an identifier leaf (not a declaration) is a variable reference."""
        ...

    def access(self, node: Node) -> tuple[bool, bool]:
        """``(reads, writes)`` of a reference."""
        ...


class TableScopes:
    """The part of a language's binding rules most languages share.

    Scopes come from a table of node types; identifiers are the references;
    there is no ``global``/``nonlocal`` statement (Python overrides that).
    """

    language: str
    scopes: Mapping[str, ScopeKind]
    reference_kinds: frozenset[str] = frozenset({"identifier"})
    skip_class_scopes_from_functions = False

    def scope_kind(self, node: Node) -> ScopeKind | None:
        """The kind of scope ``node`` opens, from the language's table."""
        return self.scopes.get(node.type)

    def nonlocal_names(self, node: Node) -> Iterable[str]:
        """No statement hands names to outer scopes."""
        return ()


def field_name(node: Node) -> str | None:
    """The field under which ``node`` sits in its parent, if any."""
    parent = node.parent
    if parent is None:
        return None
    for index, child in enumerate(parent.children):
        if child.id == node.id:
            return parent.field_name_for_child(index)
    return None


def nearest(node: Node | None, kinds: frozenset[str] | set[str]) -> Node | None:
    """``node`` or its closest ancestor whose type is in ``kinds``."""
    while node is not None and node.type not in kinds:
        node = node.parent
    return node


def scope_ancestor(node: Node, kinds: Mapping[str, ScopeKind]) -> Node:
    """The closest strict ancestor of ``node`` that opens a scope (or the root)."""
    current = node.parent
    while current is not None:
        if current.type in kinds or current.parent is None:
            return current
        current = current.parent
    return node


def has_child(node: Node, kind: str) -> bool:
    """Whether ``node`` has a direct child (named or not) of type ``kind``."""
    return any(child.type == kind for child in node.children)


def climb_targets(node: Node, wrappers: frozenset[str]) -> tuple[Node, str | None]:
    """Climb through destructuring wrappers; return the outermost one and its field."""
    current = node
    while current.parent is not None and current.parent.type in wrappers:
        current = current.parent
    return current, field_name(current)
