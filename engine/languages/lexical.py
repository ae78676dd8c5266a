"""Lexical rule sets that several languages share (post-processing's bracket scanner)."""

from __future__ import annotations

from typing import Final

from engine.languages.base import LexicalRules

C_LIKE: Final = LexicalRules(("//",), ("/*", "*/"), ('"', "'"), char_literals=True)
"""C, C++, C#, Java, Kotlin...: `'` starts a char literal."""

HASH: Final = LexicalRules(("#",), None, ('"', "'"))
"""Shell, Ruby, YAML, TOML...: `#` comments."""

DASH: Final = LexicalRules(("--",), None, ('"', "'"), char_literals=True)
"""Lua, SQL, Haskell: `--` comments."""

MARKUP: Final = LexicalRules((), ("<!--", "-->"), ('"', "'"), apostrophes=True, angle_brackets=True)
"""HTML, XML, Vue, Svelte: tags are brackets, `'` in text is an apostrophe."""

PLAIN_TEXT: Final = LexicalRules(apostrophes=True)
"""An unknown language: only brackets and quotes, `'` between letters is prose."""
