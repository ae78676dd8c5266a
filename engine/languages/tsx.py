"""TSX: TypeScript with JSX (``.tsx``, LSP ``typescriptreact``), a grammar of its own."""

from __future__ import annotations

from functools import partial
from typing import Final

from engine.languages import ecmascript
from engine.languages.base import Checker, Grammar, Language

ID: Final = "tsx"

LANGUAGE: Final = Language(
    id=ID,
    aliases=("typescriptreact",),
    extensions=(".tsx",),
    grammar=Grammar("tree_sitter_typescript", "language_tsx"),
    line_comment=ecmascript.COMMENT,
    lexical=ecmascript.SCRIPT_WITH_JSX,
    offside=False,
    block_nodes=ecmascript.BLOCK_NODES,
    outline=ecmascript.OUTLINE,
    spec=ecmascript.spec(ID, ecmascript.TS_AVOID),
    binding_rules=partial(ecmascript.JavaScriptRules, ID),
    checker=Checker("tsc", ecmascript.tsc_check(jsx=True)),
    types=ecmascript.TYPES,
)
