"""Languages the server does not parse, known to post-processing by their lexical rules.

Completions in these languages still get bracket-aware replace ranges and
indentation-based block limits; they have no grammar, outline or refactoring.
A language that gains a grammar moves out of here into a module of its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from engine.languages.base import LexicalRules, UnparsedLanguage
from engine.languages.lexical import C_LIKE, DASH, HASH, MARKUP, PLAIN_TEXT

_PHP: Final = LexicalRules(("//", "#"), ("/*", "*/"), ('"', "'"))
_SHELL: Final = replace(HASH, closing_words=frozenset({"fi", "done", "esac"}))
_HASH_END: Final = replace(HASH, closing_words=frozenset({"end"}))  # Ruby, Elixir, Julia
_MAKE: Final = replace(HASH, closing_words=frozenset({"endif", "endef"}))
_LUA: Final = replace(DASH, closing_words=frozenset({"end"}))

# `offside`: blocks end by dedenting alone, so a dedented line is the next statement.
UNPARSED: Final[tuple[UnparsedLanguage, ...]] = (
    UnparsedLanguage("c", (), C_LIKE),
    UnparsedLanguage("cpp", ("c++",), C_LIKE),
    UnparsedLanguage("csharp", ("cs",), C_LIKE),
    UnparsedLanguage("kotlin", (), C_LIKE),
    UnparsedLanguage("scala", (), C_LIKE),
    UnparsedLanguage("swift", (), C_LIKE),
    UnparsedLanguage("dart", (), C_LIKE),
    UnparsedLanguage("objective-c", (), C_LIKE),
    UnparsedLanguage("php", (), _PHP),
    UnparsedLanguage("shellscript", ("sh", "bash", "zsh"), _SHELL),
    UnparsedLanguage("ruby", ("rb",), _HASH_END),
    UnparsedLanguage("perl", (), HASH),
    UnparsedLanguage("r", (), HASH),
    UnparsedLanguage("yaml", ("yml",), HASH, offside=True),
    UnparsedLanguage("toml", (), HASH),
    UnparsedLanguage("elixir", (), _HASH_END),
    UnparsedLanguage("julia", (), _HASH_END),
    UnparsedLanguage("makefile", (), _MAKE),
    UnparsedLanguage("lua", (), _LUA),
    UnparsedLanguage("sql", (), DASH),
    UnparsedLanguage("haskell", (), DASH, offside=True),
    UnparsedLanguage("html", (), MARKUP),
    UnparsedLanguage("xml", (), MARKUP),
    UnparsedLanguage("vue", (), MARKUP),
    UnparsedLanguage("svelte", (), MARKUP),
    # Offside, with nothing lexical known beyond plain text.
    UnparsedLanguage("nim", (), PLAIN_TEXT, offside=True),
    UnparsedLanguage("coffeescript", (), PLAIN_TEXT, offside=True),
    UnparsedLanguage("fsharp", (), PLAIN_TEXT, offside=True),
)
"""Every language post-processing knows without parsing it."""
