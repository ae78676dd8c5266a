"""LSP positions <-> string offsets, in the negotiated encoding.

LSP counts ``character`` in UTF-16 code units by default, UTF-8 bytes or
code points when negotiated. Out-of-range positions are clamped as the
specification says: a character past the end of its line means the end of
the line, a line past the end of the document means the end of the document.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import numpy.typing as npt

Encoding = Literal["utf-8", "utf-16", "utf-32"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_bounds(
    text: str, begin: int, stop: int, *, stop_starts_a_line: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Starts and content ends of the lines of ``text`` from ``begin`` (a line start) to ``stop``.

    With ``stop_starts_a_line`` the line beginning at ``stop`` is not included
    (the caller has it); otherwise the last line ends at ``stop``.
    """
    starts = [begin]
    ends: list[int] = []
    for match in _LINE_BREAK.finditer(text, begin, stop):
        ends.append(match.start())
        starts.append(match.end())
    if stop_starts_a_line:
        starts.pop()
    else:
        ends.append(stop)
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


def _units(char: str, encoding: Encoding) -> int:
    code = ord(char)
    if encoding == "utf-16":
        return 2 if code > 0xFFFF else 1
    if encoding == "utf-8":
        if code < 0x80:
            return 1
        if code < 0x800:
            return 2
        return 3 if code < 0x10000 else 4
    return 1


def _width(text: str, encoding: Encoding) -> int:
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(text.encode("utf-8", "surrogatepass"))


class LineIndex:
    """Line starts of a text, for converting positions both ways.

    Kept as integer arrays, so that :meth:`edited` can produce the index of an
    edited text from this one in time proportional to the edit (plus one
    vectorised shift of the later lines), instead of scanning the whole
    document again on every keystroke.
    """

    def __init__(
        self,
        text: str,
        bounds: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None,
    ) -> None:
        self.text = text
        if bounds is None:
            bounds = _line_bounds(text, 0, len(text))
        # Start of each line, and end of its content (before its line break).
        self._starts, self._ends = bounds

    def edited(self, text: str, start: int, end: int, inserted: str) -> LineIndex:
        """The index of ``text``: this index's text with [start, end) replaced by ``inserted``."""
        starts, ends = self._starts, self._ends
        # Lines wholly before the edit keep their bounds; so do lines starting
        # two or more characters after it (a line break is at most two
        # characters, so theirs is untouched), shifted. The lines between are
        # scanned again: a CR before the edit may now pair with an inserted LF.
        first = int(np.searchsorted(starts, max(start - 1, 0), side="right")) - 1
        last = int(np.searchsorted(starts, end + 2, side="left"))
        delta = len(inserted) - (end - start)
        stop = int(starts[last]) + delta if last < len(starts) else len(text)
        mid_starts, mid_ends = _line_bounds(
            text, int(starts[first]), stop, stop_starts_a_line=last < len(starts)
        )
        return LineIndex(
            text,
            (
                np.concatenate((starts[:first], mid_starts, starts[last:] + delta)),
                np.concatenate((ends[:first], mid_ends, ends[last:] + delta)),
            ),
        )

    @property
    def line_count(self) -> int:
        """Number of lines (a trailing newline starts an empty last line)."""
        return len(self._starts)

    def offset(self, line: int, character: int, encoding: Encoding) -> int:
        """The string offset of an LSP position, clamped into the text."""
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self.text)
        start, end = int(self._starts[line]), int(self._ends[line])
        if character <= 0:
            return start
        content = self.text[start:end]
        if encoding == "utf-32" or content.isascii():
            return start + min(character, len(content))
        units = 0
        for index, char in enumerate(content):
            units += _units(char, encoding)
            if units > character:
                # Inside a multi-unit character: LSP says snap to its start.
                return start + index
            if units == character:
                return start + index + 1
        return end

    def position(self, offset: int, encoding: Encoding) -> tuple[int, int]:
        """The LSP (line, character) of a string offset, clamped into the text."""
        offset = max(0, min(offset, len(self.text)))
        line = int(np.searchsorted(self._starts, offset, side="right")) - 1
        start = int(self._starts[line])
        # An offset inside a CRLF pair belongs to the end of the line.
        offset = min(offset, int(self._ends[line]))
        return line, _width(self.text[start:offset], encoding)
