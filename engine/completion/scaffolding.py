"""The comment headers over context snippets in a prompt, written and recognised.

A prompt without repository-level FIM tokens shows other code above the
document as comment-headed blocks (``// from this file:``, ``# from
util.py:``). A model may continue that scaffolding instead of the user's
code, above a short prefix where the snippets are most of what it sees: the
pipeline cuts a completion at such a line, the decode loop stops at one, and
the engine asks again without the snippets when nothing came before it.
Both sides live here so that the header's form is written in one place.
"""

from __future__ import annotations

import re

from engine import languages

THIS_FILE = "this file"


def snippet_header(language: str | None, origin: str) -> str:
    """The header line over a snippet from ``origin`` (``this file`` or a path)."""
    return f"{languages.line_comment(language)} from {origin}:"


def _header_pattern(language: str | None) -> str:
    comment = re.escape(languages.line_comment(language))
    # "this file", or a document's path: a name with an extension. (The re
    # module caches the compiled pattern.)
    return rf"^[ \t]*{comment} from ({re.escape(THIS_FILE)}|\S*\.\w+):[ \t]*$"


def header_start(text: str, language: str | None) -> int | None:
    """Where the first whole line of ``text`` that is a snippet header starts, if any."""
    found = re.search(_header_pattern(language), text, re.MULTILINE)
    return None if found is None else found.start()


def opens_with_header(text: str, language: str | None) -> bool:
    """Whether ``text`` is a snippet header at its start, after blank lines at most."""
    start = header_start(text, language)
    return start is not None and not text[:start].strip()


def may_open_with_header(text: str, language: str | None) -> bool:
    """Whether more text could still make ``text`` open with a snippet header.

    True while the first line that is not blank is unfinished and reads as
    the start of a header so far (``#``, ``# fr``, ``# from util.py:``): a
    stream holds such text back until the line ends. Once it is False,
    :func:`opens_with_header` says what the text is.
    """
    first = text.lstrip(" \t\r\n")  # blank lines, and the line's indentation
    if "\n" in first:
        return False
    marker = f"{languages.line_comment(language)} from "
    if len(first) <= len(marker):
        return marker.startswith(first)
    if not first.startswith(marker):
        return False
    origin = first[len(marker) :].rstrip(" \t")
    # "this file:" so far, or a path (no spaces) that a colon ends after its extension.
    if f"{THIS_FILE}:".startswith(origin):
        return True
    path = r"\S*\.\w+:" if origin.endswith(":") else r"\S*"
    return re.fullmatch(path, origin) is not None
