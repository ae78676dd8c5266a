"""The shape of what the server knows about one language: plain, immutable data.

Each language module of this package fills in one :class:`Language`; the
registry (:mod:`engine.languages`) collects them. These types import nothing of
the consumers (syntax, completion, refactoring), which import this package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from tree_sitter import Node

from engine.languages.scoping import BindingRules

Case = Literal["snake", "camel"]


@dataclass(frozen=True)
class Grammar:
    """Where a tree-sitter grammar lives: the wheel's module and its language function.

    Imported on first use rather than with the registry, so that code which
    only needs the lexical rules (post-processing) works without the wheels.
    """

    module: str
    function: str = "language"

    def load(self) -> object:
        """The grammar capsule; raises ``ImportError`` when the wheel is not installed."""
        loader: Callable[[], object] = getattr(importlib.import_module(self.module), self.function)
        return loader()


@dataclass(frozen=True)
class LexicalRules:
    """What the post-processing bracket scanner must know to skip strings and comments."""

    line_comments: tuple[str, ...] = ()
    block_comment: tuple[str, str] | None = None
    quotes: tuple[str, ...] = ('"', "'", "`")  # longest first
    multiline_quotes: frozenset[str] = frozenset()
    # `'` only starts a char literal ('x', '\n'): Rust lifetimes, Haskell primes.
    char_literals: bool = False
    # `'` between two word characters is an apostrophe (prose, markup text).
    apostrophes: bool = False
    # `<tag>` ... `</tag>` / `/>` count as brackets (markup, JSX).
    angle_brackets: bool = False
    # Words that end a block on a line of their own (Ruby's and Lua's `end`,
    # the shell's `fi`, `done`, `esac`); elsewhere they are ordinary names.
    closing_words: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outline:
    """What counts as an import, a named scope and a definition (completion context)."""

    imports: frozenset[str]
    scopes: frozenset[str]
    functions: frozenset[str]
    definitions: frozenset[str]
    containers: frozenset[str]
    wrappers: frozenset[str]


@dataclass(frozen=True)
class LanguageSpec:
    """How one language's code is shaped and spelled (what the refactorings need)."""

    name: str
    case: Case
    comment: str
    keywords: frozenset[str]
    avoid: frozenset[str]
    identifier_extra: str
    indent_unit: str
    statement_containers: frozenset[str]
    expression_kinds: frozenset[str]
    not_extractable: frozenset[str]
    expression_statements: frozenset[str]
    functions: frozenset[str]
    lambdas: frozenset[str]
    loops: Mapping[str, frozenset[str]]
    branches: Mapping[str, frozenset[str]]
    short_circuit: frozenset[str]
    string_kinds: frozenset[str]
    comment_kinds: frozenset[str]
    call_kinds: frozenset[str]
    same_line_separator: str
    binding_prompt_prefix: str
    function_prompt_prefix: str
    # A local-variable declaration, with `{name}`, `{expression}` and `{type}`
    # (the inferred type, or `untyped_binding_type` when none is known).
    binding_template: str
    untyped_binding_type: str = ""

    def binding(self, name: str, expression: str, type_text: str | None = None) -> str:
        """A local-variable declaration of ``name`` holding ``expression``."""
        return self.binding_template.format(
            name=name, expression=expression, type=type_text or self.untyped_binding_type
        )

    def is_function(self, node: Node) -> bool:
        """A named function or method definition."""
        return node.type in self.functions

    def is_function_like(self, node: Node) -> bool:
        """A function, method, closure or lambda."""
        return node.type in self.functions or node.type in self.lambdas


@dataclass(frozen=True)
class CheckerCommand:
    """How to run a checker: the file to write the code to and the command line."""

    file_name: str
    argv: tuple[str, ...]


CheckerPlan = Callable[[str, str], "CheckerCommand | str"]
"""``(code, directory) ->`` the command to run, or why this code cannot be checked."""


@dataclass(frozen=True)
class Checker:
    """A language's own checker (compiler or vetter); ``tool`` names it in messages."""

    tool: str
    plan: CheckerPlan


def _no_names() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_ranks() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class TypeTables:
    """What best-effort type inference knows of a statically typed language.

    Only tables: the inference itself (operators, suffixed literals, blocks)
    stays in ``engine.refactor.type_inference``.
    """

    boolean: str
    literals: Mapping[str, str]  # literal node kind -> its type
    method_results: Mapping[str, str] = field(default_factory=_no_names)  # `x.len()` -> usize
    # Builtins called bare: `len(x)` -> int.
    function_results: Mapping[str, str] = field(default_factory=_no_names)
    # Type names called as functions (conversions): `int64(x)` -> int64.
    conversions: frozenset[str] = frozenset()
    # Calls through a package: `strconv.Itoa` -> string.
    qualified_results: Mapping[str, str] = field(default_factory=_no_names)
    # Methods whose result has the receiver's type: `x.clone()`.
    same_as_receiver: frozenset[str] = frozenset()
    # Numeric types by width, for binary numeric promotion.
    numeric_rank: Mapping[str, int] = field(default_factory=_no_ranks)


@dataclass(frozen=True)
class Language:
    """Everything the server knows about one language it parses.

    ``aliases`` are the other names a client may use (LSP language ids such as
    ``typescriptreact``, short names); names and extensions are lower case.
    """

    id: str
    aliases: tuple[str, ...]
    extensions: tuple[str, ...]
    grammar: Grammar
    line_comment: str
    # Post-processing: lexical rules, whether blocks end by dedenting alone,
    # and the node kinds that hold a list of statements or members.
    lexical: LexicalRules
    offside: bool
    block_nodes: frozenset[str]
    outline: Outline
    # Refactoring: syntax facts, name resolution, the checker, type tables.
    spec: LanguageSpec
    binding_rules: Callable[[], BindingRules]
    checker: Checker
    types: TypeTables | None

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical id and every alias."""
        return (self.id, *self.aliases)


@dataclass(frozen=True)
class UnparsedLanguage:
    """A language the server does not parse, known to post-processing by its lexical rules."""

    id: str
    aliases: tuple[str, ...]
    lexical: LexicalRules
    offside: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical id and every alias."""
        return (self.id, *self.aliases)
