"""Recently viewed and edited chunks of code, offered as extra context (llama.vim's ring).

A chunk is a run of lines around where the user was: a file opened or
switched to, an edit far from the last chunk taken in that file. The ring
keeps a bounded number per server. A new chunk evicts the ones too similar
to it and the older chunks of the same region of its file (the region seen
again, edited), and an identical one is not added twice. When offered,
chunks come oldest first, so that a new chunk only adds to the end of the
context and the prompt's head (and its KV cache) stays put; a chunk too
similar to the text around the cursor is left out, since the prompt's own
window already shows it.

Every other place's prompt shows the ring's chunks, so a chunk taken again
means that place's prompt is read again from the snippet on (seconds for a
thousand tokens on a CPU). So typing and returning to a region the ring
already holds takes nothing while the chunk still reads like the region
(fewer than a few of its lines changed). The check runs when the user comes
back to the region (a file switched to, an edit half a chunk or more from
the last one in that file) and when the user leaves a file for another, not
on the keystrokes in between.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# llama.vim's threshold: above it two chunks count as the same code.
SIMILARITY_LIMIT = 0.9
# Chunks shorter than this say too little to be worth their header.
MIN_CHUNK_LINES = 3
# A held chunk is taken again once this many of its lines (or a tenth of
# them, in long chunks) read differently now: the line being typed is one.
DRIFT_LINES = 3


@dataclass(frozen=True)
class Chunk:
    """Lines of one document, from ``start_line`` (0-based)."""

    source: str
    start_line: int
    text: str


def line_similarity(first: Sequence[str], second: Sequence[str]) -> float:
    """2 x (lines of ``first`` also in ``second``) / (both line counts): 0 unrelated, 1 same."""
    if not first and not second:
        return 1.0
    present = set(second)
    common = sum(1 for line in first if line in present)
    return 2.0 * common / (len(first) + len(second))


def lines_around(text: str, line: int, count: int) -> tuple[int, list[str]]:
    """Up to ``count`` lines of ``text`` centred on ``line``, and the first one's number."""
    return _window(text.split("\n"), line, count)


def _window(lines: list[str], line: int, count: int) -> tuple[int, list[str]]:
    start = max(0, min(line - count // 2, len(lines) - count))
    return start, lines[start : start + count]


class ChunkRing:
    """The ring of chunks; thread-safe (edits arrive on the loop, lookups on a thread)."""

    def __init__(self, max_chunks: int = 8, chunk_lines: int = 32) -> None:
        self.max_chunks = max_chunks
        self.chunk_lines = chunk_lines
        self._chunks: list[tuple[Chunk, list[str]]] = []
        # The line of the last chunk taken per document: edits near it add nothing.
        self._last_line: dict[str, int] = {}
        self._lock = threading.Lock()
        # Counts changes: a caller that saw this number knows whether the ring moved since.
        self.version = 0

    def note(self, source: str, text: str, line: int) -> bool:
        """Take the chunk around ``line`` of ``source``; True when the ring changed."""
        if self.max_chunks <= 0 or self.chunk_lines <= 0:
            return False
        return self._take(source, text.split("\n"), line)

    def revisit(self, source: str, text: str, line: int) -> bool:
        """The user is at ``line`` again: take its chunk unless the ring holds it as it reads."""
        if self.max_chunks <= 0 or self.chunk_lines <= 0:
            return False
        lines = text.split("\n")
        if self._holds(source, lines, line):
            with self._lock:
                self._last_line[source] = line
            return False
        return self._take(source, lines, line)

    def leave(self, source: str, text: str) -> bool:
        """The user left ``source``: its last region is taken again if it drifted from its chunk.

        Typing on in one region checks nothing (see :meth:`note_edit`); on
        leaving, the other files' prompts are to show that region as it is now.
        """
        with self._lock:
            line = self._last_line.get(source)
        if line is None:
            return False
        return self.revisit(source, text, line)

    def note_edit(self, source: str, text: str, offset: int) -> bool:
        """An edit at ``offset``: a chunk is taken once the edits move half a chunk away."""
        line = text.count("\n", 0, offset)
        with self._lock:
            last = self._last_line.get(source)
        if last is not None and abs(line - last) < self.chunk_lines // 2:
            return False
        return self.revisit(source, text, line)

    def _holds(self, source: str, lines: list[str], line: int) -> bool:
        """Whether a chunk of ``source`` covers ``line`` and still reads like those lines."""
        with self._lock:
            held = [
                (chunk, chunk_lines)
                for chunk, chunk_lines in self._chunks
                if chunk.source == source
                and chunk.start_line <= line < chunk.start_line + len(chunk_lines)
            ]
        for chunk, chunk_lines in held:
            now = set(lines[chunk.start_line : chunk.start_line + len(chunk_lines)])
            gone = sum(1 for text in chunk_lines if text not in now)
            if gone < max(DRIFT_LINES, math.ceil(len(chunk_lines) * (1 - SIMILARITY_LIMIT))):
                return True
        return False

    def _take(self, source: str, text_lines: list[str], line: int) -> bool:
        start, lines = _window(text_lines, line, self.chunk_lines)
        if sum(1 for item in lines if item.strip()) < MIN_CHUNK_LINES:
            return False
        chunk = Chunk(source, start, "\n".join(lines).rstrip("\n") + "\n")
        end = start + len(lines)
        with self._lock:
            self._last_line[source] = line
            if any(old.text == chunk.text for old, _ in self._chunks):
                return False
            kept = [
                (old, old_lines)
                for old, old_lines in self._chunks
                if line_similarity(old_lines, lines) <= SIMILARITY_LIMIT
                # The same region of the same file, as it was: the new chunk replaces it.
                and not (
                    old.source == source
                    and min(end, old.start_line + len(old_lines)) - max(start, old.start_line)
                    >= len(lines) // 2
                )
            ]
            kept.append((chunk, lines))
            self._chunks = kept[-self.max_chunks :]
            self.version += 1
            while len(self._last_line) > 4 * self.max_chunks:
                del self._last_line[next(iter(self._last_line))]
        return True

    def drop(self, source_gone: Callable[[str], bool]) -> None:
        """Forget the chunks of every source for which ``source_gone`` is true."""
        with self._lock:
            kept = [(c, lines) for c, lines in self._chunks if not source_gone(c.source)]
            if len(kept) != len(self._chunks):
                self._chunks = kept
                self.version += 1

    def offered(self, cursor_lines: Sequence[str]) -> list[Chunk]:
        """The chunks, oldest first, less those too similar to the lines around the cursor."""
        with self._lock:
            chunks = list(self._chunks)
        return [
            chunk
            for chunk, lines in chunks
            if line_similarity(lines, cursor_lines) <= SIMILARITY_LIMIT
        ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._chunks)
