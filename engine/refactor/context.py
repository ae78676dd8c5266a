"""What every refactoring planner receives (the parsed request) and returns (candidates)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Node

from engine import languages
from engine.refactor.edits import indent_unit, newline_of
from engine.refactor.languages import LanguageSpec
from engine.refactor.schema import RefactorRequest, TextEdit
from engine.refactor.scopes import BindingRules, ScopeAnalysis, analyze
from engine.syntax import SyntaxDocument

FreeCheckMode = Literal["exact", "no_new_unresolved"]


@dataclass(frozen=True)
class Signature:
    """A function's name and whitespace-normalised header, to compare before and after."""

    name: str
    header: str


@dataclass(frozen=True)
class Candidate:
    """One way to perform the refactoring, before the safety checks judge it.

    ``allowed_new_free`` lists names the edit may add to the region's free
    names (the call to an extracted helper); ``signatures`` are the functions
    whose signature the operation promises to keep.
    """

    edits: tuple[TextEdit, ...]
    explanation: str
    model_confidence: float | None
    allowed_new_free: frozenset[str] = frozenset()
    free_mode: FreeCheckMode = "exact"
    signatures: tuple[Signature, ...] = ()


@dataclass
class RefactorContext:
    """The request, parsed once, with the language facts planners need."""

    request: RefactorRequest
    document: SyntaxDocument
    selection: tuple[int, int] | None
    spec: LanguageSpec = field(init=False)
    rules: BindingRules = field(init=False)
    newline: str = field(init=False)
    indent: str = field(init=False)
    _analyses: dict[tuple[int, ...], ScopeAnalysis] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        language = languages.get(self.document.language)
        self.spec = language.spec
        self.rules = language.binding_rules()
        self.newline = newline_of(self.document.text)
        self.indent = indent_unit(self.document.text, self.spec)

    @property
    def code(self) -> str:
        """The original code."""
        return self.document.text

    def byte_span(self) -> tuple[int, int] | None:
        """The selection in bytes."""
        if self.selection is None:
            return None
        start, end = self.selection
        return self.document.byte_offset(start), self.document.byte_offset(end)

    def analysis(self, nodes: list[Node]) -> ScopeAnalysis:
        """Name resolution over ``nodes`` (cached per node set)."""
        key = tuple(n.id for n in nodes)
        if key not in self._analyses:
            self._analyses[key] = analyze(nodes, self.rules, self.document.data)
        return self._analyses[key]

    def full_analysis(self) -> ScopeAnalysis:
        """Name resolution over the whole file."""
        return self.analysis(self.document.tree.root_node.named_children)

    def line_of(self, node: Node) -> int:
        """1-based line number of a node, for explanations."""
        return node.start_point.row + 1


def top_level_item(node: Node) -> Node:
    """The direct child of the root that contains ``node``."""
    current = node
    while current.parent is not None and current.parent.parent is not None:
        current = current.parent
    return current


def signature_of(document: SyntaxDocument, function: Node) -> Signature | None:
    """The signature of a named function, or ``None`` for anonymous ones."""
    name = function.child_by_field_name("name")
    if name is None:
        return None
    header = re.sub(r"\s+", " ", document.header(function)).strip()
    return Signature(document.node_text(name), header)


def enclosing_functions(spec: LanguageSpec, node: Node) -> list[Node]:
    """Named functions around ``node``, innermost first."""
    found: list[Node] = []
    current = node.parent
    while current is not None:
        if spec.is_function(current):
            found.append(current)
        current = current.parent
    return found


def one_line(text: str, limit: int = 60) -> str:
    """``text`` on one line, shortened for explanations and prompts."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def line_span(first: Node, last: Node) -> str:
    """``line 3`` or ``lines 3-5``, for explanations."""
    start, end = first.start_point.row + 1, last.end_point.row + 1
    return f"line {start}" if start == end else f"lines {start}-{end}"


def with_article(words: str) -> str:
    """``a statement`` / ``an expression``."""
    return ("an " if words[:1].lower() in "aeiou" else "a ") + words
