"""LSP positions <-> string offsets, in the negotiated encoding.

LSP counts ``character`` in UTF-16 code units by default, UTF-8 bytes or
code points when negotiated. Out-of-range positions are clamped as the
specification says: a character past the end of its line means the end of
the line, a line past the end of the document means the end of the document.
"""

from __future__ import annotations

import bisect
import re
from typing import Literal

Encoding = Literal["utf-8", "utf-16", "utf-32"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
    """Line starts of a text, for converting positions both ways."""

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        ends: list[int] = []
        for match in _LINE_BREAK.finditer(text):
            ends.append(match.start())
            starts.append(match.end())
        ends.append(len(text))
        self._starts = starts
        self._ends = ends  # end of each line's content, before its line break

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
        start, end = self._starts[line], self._ends[line]
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
        line = bisect.bisect_right(self._starts, offset) - 1
        start = self._starts[line]
        # An offset inside a CRLF pair belongs to the end of the line.
        offset = min(offset, self._ends[line])
        return line, _width(self.text[start:offset], encoding)
