"""Languages the server does not parse, known to post-processing by their lexical rules.

Completions in these languages still get bracket-aware replace ranges and
indentation-based block limits; they have no grammar, outline or refactoring.
A language that gains a grammar moves out of here into a module of its own.
"""

from __future__ import annotations

from typing import Final

from engine.languages.base import LexicalRules, UnparsedLanguage
from engine.languages.lexical import C_LIKE, DASH, HASH, MARKUP, PLAIN_TEXT

_PHP: Final = LexicalRules(("//", "#"), ("/*", "*/"), ('"', "'"))

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
    UnparsedLanguage("shellscript", ("sh", "bash", "zsh"), HASH),
    UnparsedLanguage("ruby", ("rb",), HASH),
    UnparsedLanguage("perl", (), HASH),
    UnparsedLanguage("r", (), HASH),
    UnparsedLanguage("yaml", ("yml",), HASH, offside=True),
    UnparsedLanguage("toml", (), HASH),
    UnparsedLanguage("elixir", (), HASH),
    UnparsedLanguage("julia", (), HASH),
    UnparsedLanguage("makefile", (), HASH),
    UnparsedLanguage("lua", (), DASH),
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
