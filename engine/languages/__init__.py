"""The languages the server knows, one module each, and the registry that collects them.

Each parsed language has a module here (``python``, ``rust``, ``go``, ``java``,
``javascript`` with JSX, ``typescript``, ``tsx``) that builds one
:class:`Language`: its names and extensions, grammar, comment marker,
post-processing rules, outline, refactoring facts and binding rules, checker
and type tables. Languages known only lexically (for post-processing) are in
:mod:`engine.languages.unparsed`. Adding a language means adding its module and
listing it in ``_LANGUAGES`` below.

Syntax, completion, refactoring and the document store ask this registry; none
keeps a table of its own, so they cannot disagree on what a name means. The
registry is built once at import, is immutable, and checks that every name and
extension means exactly one language.

Import rule: this package imports only the standard library, ``tree_sitter``
and itself (grammar wheels load on first use), never ``engine.syntax``,
``engine.completion`` or ``engine.refactor``, which import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, TypeVar

from engine.languages import go, java, javascript, python, rust, tsx, typescript
from engine.languages.base import Language, UnparsedLanguage
from engine.languages.unparsed import UNPARSED

__all__ = [
    "Language",
    "UnparsedLanguage",
    "all_languages",
    "get",
    "ids",
    "line_comment",
    "resolve",
    "resolve_text",
    "unparsed_languages",
]

# The order of "supported: ..." lists in error messages.
_LANGUAGES: Final[tuple[Language, ...]] = (
    rust.LANGUAGE,
    python.LANGUAGE,
    typescript.LANGUAGE,
    tsx.LANGUAGE,
    javascript.LANGUAGE,
    go.LANGUAGE,
    java.LANGUAGE,
)

_Entry = TypeVar("_Entry", bound=Language | UnparsedLanguage)


def _index(pairs: Iterable[tuple[str, _Entry]]) -> Mapping[str, _Entry]:
    """An immutable name -> entry map; a name claimed twice is a bug, caught at import."""
    index: dict[str, _Entry] = {}
    for key, entry in pairs:
        if key != key.strip().lower() or not key:
            raise ValueError(f"{key!r} of {entry.id}: names and extensions are lower case, trimmed")
        claimed = index.get(key)
        if claimed is not None and claimed is not entry:
            raise ValueError(f"{key!r} names both {claimed.id} and {entry.id}")
        index[key] = entry
    return MappingProxyType(index)


_BY_NAME: Final = _index((name, lang) for lang in _LANGUAGES for name in lang.names)
_BY_ID: Final = _index((lang.id, lang) for lang in _LANGUAGES)
_BY_EXTENSION: Final = _index(
    (extension, lang) for lang in _LANGUAGES for extension in lang.extensions
)
# Parsed and unparsed languages share one namespace: a name means one thing.
_TEXT_NAMES: Final[tuple[tuple[str, Language | UnparsedLanguage], ...]] = (
    *((name, lang) for lang in _LANGUAGES for name in lang.names),
    *((name, lang) for lang in UNPARSED for name in lang.names),
)
_TEXT_BY_NAME: Final = _index(_TEXT_NAMES)
_IDS: Final = tuple(lang.id for lang in _LANGUAGES)


def resolve(language_id: str | None = None, file_path: str | None = None) -> Language | None:
    """The language an LSP language id, a request's language or a file path names.

    The id wins when it is known (any case, surrounding blanks ignored);
    otherwise the file extension decides. ``None`` when neither names a parsed
    language.
    """
    if language_id:
        found = _BY_NAME.get(language_id.strip().lower())
        if found is not None:
            return found
    if file_path:
        # Paths may come from Windows clients: split on both separators by hand
        # instead of letting pathlib apply this host's rules.
        name = file_path.replace("\\", "/").rsplit("/", 1)[-1]
        dot = name.rfind(".")
        if dot > 0:
            return _BY_EXTENSION.get(name[dot:].lower())
    return None


def get(language_id: str) -> Language:
    """The language with this canonical id; ``KeyError`` for anything else (aliases too)."""
    try:
        return _BY_ID[language_id]
    except KeyError:
        raise KeyError(f"no language {language_id!r}; known: {', '.join(_IDS)}") from None


def all_languages() -> tuple[Language, ...]:
    """Every parsed language, in registry order."""
    return _LANGUAGES


def ids() -> tuple[str, ...]:
    """The canonical ids of the parsed languages, in registry order."""
    return _IDS


def line_comment(language_id: str | None) -> str:
    """The line-comment marker of a language id or alias (``#`` when unknown)."""
    found = resolve(language_id)
    return found.line_comment if found is not None else "#"


def resolve_text(language_id: str | None) -> Language | UnparsedLanguage | None:
    """What post-processing treats text in ``language_id`` as: a parsed or an unparsed language.

    ``None`` for an unknown name (plain text rules apply).
    """
    if not language_id:
        return None
    return _TEXT_BY_NAME.get(language_id.strip().lower())


def unparsed_languages() -> tuple[UnparsedLanguage, ...]:
    """Every language post-processing knows without parsing it."""
    return UNPARSED
