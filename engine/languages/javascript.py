"""JavaScript, JSX included.

One language, not two: the tree-sitter JavaScript grammar parses JSX, and
``.js`` files of React projects hold JSX as often as ``.jsx`` files do. So
``jsx`` and ``javascriptreact`` are aliases of ``javascript`` and every consumer
gets the JSX-aware rules for all of them (TSX, whose grammar is separate from
TypeScript's, is its own language: :mod:`engine.languages.tsx`).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Final

from engine.languages import ecmascript
from engine.languages.base import Checker, CheckerCommand, Grammar, Language

ID: Final = "javascript"

_ES_MODULE = re.compile(r"^\s*(?:import|export)\b", re.MULTILINE)


def _check(code: str, directory: str) -> CheckerCommand | str:
    # `node --check` reads `.mjs` as an ES module and `.js` as CommonJS.
    name = "snippet.mjs" if _ES_MODULE.search(code) else "snippet.js"
    return CheckerCommand(name, ("node", "--check", name))


LANGUAGE: Final = Language(
    id=ID,
    aliases=("js", "jsx", "javascriptreact", "node"),
    extensions=(".js", ".mjs", ".cjs", ".jsx"),
    grammar=Grammar("tree_sitter_javascript"),
    line_comment=ecmascript.COMMENT,
    lexical=ecmascript.SCRIPT_WITH_JSX,
    offside=False,
    block_nodes=ecmascript.BLOCK_NODES,
    outline=ecmascript.OUTLINE,
    spec=ecmascript.spec(ID, ecmascript.JS_AVOID),
    binding_rules=partial(ecmascript.JavaScriptRules, ID),
    checker=Checker("node --check", _check),
    types=ecmascript.TYPES,
)
