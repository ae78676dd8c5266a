"""Name resolution over a tree-sitter tree: scopes, bindings and their occurrences.

The walk is generic; what declares a name, what opens a scope and which
identifiers are variable references is per language (the binding rules in each
language's module of ``engine.languages``). The result answers the questions
refactorings ask: which binding does this identifier mean, where else is it
used, which names does a region read from outside, and which does it write.

Resolution is lexical and intentionally conservative: members (``a.b``), types
and paths are not tracked, so an identifier that is not a variable-like
reference never resolves to a binding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tree_sitter import Node

# The rule vocabulary lives with the language modules (which must not import
# engine.refactor); it is re-exported here for the refactorings.
from engine.languages.scoping import (
    BindingKind,
    BindingRules,
    Declaration,
    ScopeKind,
    field_name,
    nearest,
)

__all__ = [
    "Binding",
    "BindingKind",
    "BindingRules",
    "Declaration",
    "Occurrence",
    "Scope",
    "ScopeAnalysis",
    "ScopeKind",
    "analyze",
    "field_name",
    "nearest",
]


@dataclass(eq=False)
class Scope:
    """A region where names are declared."""

    node: Node
    kind: ScopeKind
    parent: Scope | None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    nonlocal_names: set[str] = field(default_factory=set)


@dataclass(eq=False)
class Binding:
    """One variable (or function, class, import) and everything known about it."""

    name: str
    scope: Scope
    kind: BindingKind
    visible_from: int
    declarations: list[Node]
    type_node: Node | None
    value_node: Node | None
    mutable: bool


@dataclass(eq=False)
class Occurrence:
    """An identifier that declares or refers to a name."""

    node: Node
    name: str
    binding: Binding | None
    declares: bool
    reads: bool
    writes: bool


@dataclass
class ScopeAnalysis:
    """Bindings and occurrences of the analysed nodes."""

    occurrences: list[Occurrence]
    scopes: list[Scope]

    def occurrence_at(self, start_byte: int, end_byte: int) -> Occurrence | None:
        """The occurrence whose identifier covers ``[start_byte, end_byte]``."""
        for occ in self.occurrences:
            if occ.node.start_byte <= start_byte and end_byte <= occ.node.end_byte:
                return occ
        return None

    def occurrences_of(self, binding: Binding) -> list[Occurrence]:
        """Declarations and references of ``binding``, in source order."""
        return [o for o in self.occurrences if o.binding is binding]

    def in_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[Occurrence]:
        """Occurrences inside any of the byte ranges."""
        return [o for o in self.occurrences if _inside(o.node, ranges)]

    def free_names(self, ranges: Sequence[tuple[int, int]]) -> set[str]:
        """Names referenced in ``ranges`` whose binding is not declared there."""
        free: set[str] = set()
        for occ in self.in_ranges(ranges):
            if occ.declares:
                continue
            binding = occ.binding
            if binding is None or not any(_inside(d, ranges) for d in binding.declarations):
                free.add(occ.name)
        return free

    def names_in(self, node: Node) -> set[str]:
        """Every declared or referenced name inside ``node``."""
        span = [(node.start_byte, node.end_byte)]
        return {o.name for o in self.in_ranges(span)}


def _inside(node: Node, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(start <= node.start_byte and node.end_byte <= end for start, end in ranges)


def analyze(nodes: Sequence[Node], rules: BindingRules, source: bytes) -> ScopeAnalysis:
    """Resolve every name in ``nodes`` (siblings, usually top-level items).

    Names declared outside ``nodes`` stay unresolved: to an analysis of one
    function, a module-level helper is a free name, which is exactly what the
    free-identifier safety check wants.
    """
    if not nodes:
        return ScopeAnalysis([], [])
    root_node = nodes[0].parent or nodes[0]
    module = Scope(root_node, "module", None)
    scopes_by_node: dict[int, Scope] = {root_node.id: module}
    scopes = [module]
    order: list[tuple[Node, Scope]] = []

    stack: list[tuple[Node, Scope]] = [(n, module) for n in reversed(nodes)]
    while stack:
        node, scope = stack.pop()
        kind = rules.scope_kind(node)
        if kind is not None and node.id != root_node.id:
            scope = Scope(node, kind, scope)
            scopes_by_node[node.id] = scope
            scopes.append(scope)
        order.append((node, scope))
        if node.child_count:
            stack.extend((child, scope) for child in reversed(node.children))

    def text(node: Node) -> str:
        return source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    for node, scope in order:
        for name in rules.nonlocal_names(node):
            holder: Scope | None = scope
            while holder is not None and holder.kind not in ("function", "module"):
                holder = holder.parent
            if holder is not None:
                holder.nonlocal_names.add(name)

    declared: dict[int, Occurrence] = {}
    occurrences: list[Occurrence] = []
    for node, _ in order:
        for decl in rules.declarations(node):
            target = scopes_by_node.get(decl.scope_node.id, module)
            name = text(decl.name_node)
            if not name or name == "_":
                continue
            existing = target.bindings.get(name)
            if decl.merge and name in target.nonlocal_names:
                continue  # a global/nonlocal name: the site is a write to the outer binding
            if existing and (decl.merge or decl.redeclare_as_write):
                binding = existing[-1]
                if decl.merge:
                    binding.declarations.append(decl.name_node)
                    occ = Occurrence(decl.name_node, name, binding, True, decl.reads, True)
                else:
                    occ = Occurrence(decl.name_node, name, binding, False, False, True)
            else:
                binding = Binding(
                    name=name,
                    scope=target,
                    kind=decl.kind,
                    visible_from=decl.visible_from,
                    declarations=[decl.name_node],
                    type_node=decl.type_node,
                    value_node=decl.value_node,
                    mutable=decl.mutable,
                )
                target.bindings.setdefault(name, []).append(binding)
                occ = Occurrence(decl.name_node, name, binding, True, decl.reads, True)
            declared[decl.name_node.id] = occ
            occurrences.append(occ)

    for node, scope in order:
        if node.type not in rules.reference_kinds or node.id in declared:
            continue
        if not rules.is_reference(node):
            continue
        name = text(node)
        if not name or name == "_":
            continue
        reads, writes = rules.access(node)
        resolved = _resolve(name, scope, node.start_byte, rules)
        occurrences.append(Occurrence(node, name, resolved, False, reads, writes))

    occurrences.sort(key=lambda o: o.node.start_byte)
    return ScopeAnalysis(occurrences, scopes)


def _resolve(name: str, scope: Scope, position: int, rules: BindingRules) -> Binding | None:
    current: Scope | None = scope
    left_function = False
    while current is not None:
        skip = current.kind == "class" and left_function and rules.skip_class_scopes_from_functions
        candidates = None if skip else current.bindings.get(name)
        if candidates:
            visible = [b for b in candidates if b.visible_from <= position]
            if visible:
                return max(visible, key=lambda b: b.visible_from)
        if current.kind in ("function", "comprehension"):
            left_function = True
        current = current.parent
    return None
