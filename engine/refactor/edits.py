"""Text edits in code-point offsets and the layout helpers the refactorings share."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from engine.refactor.languages import LanguageSpec
from engine.refactor.schema import TextEdit


def ordered(edits: Sequence[TextEdit]) -> list[TextEdit]:
    """Edits sorted by position; overlapping edits are a programming error."""
    result = sorted(edits, key=lambda e: (e.start, e.end))
    for before, after in pairwise(result):
        if after.start < before.end:
            raise ValueError(f"overlapping edits at {before.start}-{before.end} and {after.start}")
    return result


def apply_edits(code: str, edits: Sequence[TextEdit]) -> str:
    """``code`` with every edit applied (offsets refer to the original ``code``)."""
    parts: list[str] = []
    position = 0
    for edit in ordered(edits):
        parts.append(code[position : edit.start])
        parts.append(edit.new_text)
        position = edit.end
    parts.append(code[position:])
    return "".join(parts)


def new_ranges(edits: Sequence[TextEdit]) -> list[tuple[int, int]]:
    """Where each edit's new text lies in the edited code, in edit order."""
    shift = 0
    spans: list[tuple[int, int]] = []
    for edit in ordered(edits):
        start = edit.start + shift
        spans.append((start, start + len(edit.new_text)))
        shift += len(edit.new_text) - (edit.end - edit.start)
    return spans


def map_offset(offset: int, edits: Sequence[TextEdit]) -> int:
    """Where ``offset`` of the original lands after the edits (inside an edit: its end)."""
    shift = 0
    for edit in ordered(edits):
        if edit.end <= offset and edit.start < offset:
            shift += len(edit.new_text) - (edit.end - edit.start)
        elif edit.start < offset:
            return edit.start + shift + len(edit.new_text)
        else:
            break
    return offset + shift


def newline_of(code: str) -> str:
    """The file's line ending, so inserted lines match it."""
    return "\r\n" if "\r\n" in code else "\n"


def line_start(code: str, offset: int) -> int:
    """Offset of the first character of the line containing ``offset``."""
    return code.rfind("\n", 0, offset) + 1


def line_indent(code: str, offset: int) -> str:
    """Leading whitespace of the line containing ``offset``."""
    start = line_start(code, offset)
    end = start
    while end < len(code) and code[end] in " \t":
        end += 1
    return code[start:end]


def starts_line(code: str, offset: int) -> bool:
    """Whether only indentation precedes ``offset`` on its line."""
    return code[line_start(code, offset) : offset].strip() == ""


def indent_unit(code: str, spec: LanguageSpec) -> str:
    """One level of indentation as the file writes it (the language default otherwise)."""
    widths: list[int] = []
    for line in code.split("\n"):
        stripped = line.lstrip(" \t")
        if not stripped or len(stripped) == len(line):
            continue
        if line.startswith("\t"):
            return "\t"
        widths.append(len(line) - len(stripped))
    if widths:
        smallest = min(widths)
        if 2 <= smallest <= 8:
            return " " * smallest
    return spec.indent_unit


def reindent(
    text: str,
    old_indent: str,
    new_indent: str,
    keep: Sequence[tuple[int, int]] = (),
    newline: str = "\n",
) -> str:
    """Move every line after the first from ``old_indent`` to ``new_indent``.

    Lines that start inside a ``keep`` range (offsets into ``text``: multi-line
    string literals) are left alone, since their whitespace is data.
    """
    lines = text.split("\n")
    # The first line's CR goes too: ``newline`` puts it back (kept, a CRLF
    # text came out with "\r\r\n" after its first line).
    result = [lines[0].rstrip("\r") if len(lines) > 1 else lines[0]]
    position = len(lines[0]) + 1
    for line in lines[1:]:
        protected = any(start < position < end for start, end in keep)
        body = line.rstrip("\r")
        if protected:
            result.append(body)
        elif not body.strip():
            result.append("")
        elif body.startswith(old_indent):
            result.append(new_indent + body[len(old_indent) :])
        else:
            result.append(new_indent + body.lstrip(" \t"))
        position += len(line) + 1
    return newline.join(result)
