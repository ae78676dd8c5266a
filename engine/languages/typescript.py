"""TypeScript without JSX (``.ts``); TSX has its own grammar and module."""

from __future__ import annotations

from functools import partial
from typing import Final

from engine.languages import ecmascript
from engine.languages.base import Checker, Grammar, Language

ID: Final = "typescript"

LANGUAGE: Final = Language(
    id=ID,
    aliases=("ts",),
    extensions=(".ts", ".mts", ".cts"),
    grammar=Grammar("tree_sitter_typescript", "language_typescript"),
    line_comment=ecmascript.COMMENT,
    # No JSX in `.ts`: `<T>(x)` is a type assertion, `a < b` a comparison.
    lexical=ecmascript.SCRIPT,
    offside=False,
    block_nodes=ecmascript.BLOCK_NODES,
    outline=ecmascript.OUTLINE,
    spec=ecmascript.spec(ID, ecmascript.TS_AVOID),
    binding_rules=partial(ecmascript.JavaScriptRules, ID),
    checker=Checker("tsc", ecmascript.tsc_check(jsx=False)),
    types=ecmascript.TYPES,
)
