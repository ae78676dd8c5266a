"""Recently viewed and edited chunks of code, offered as extra context (llama.vim's ring).

A chunk is a run of lines around where the user was: a file opened or
switched to, an edit far from the last chunk taken in that file. The ring
keeps a bounded number per server. A new chunk evicts the ones too similar
to it (the same region seen again, a little edited) and an identical one is
not added twice. When offered, chunks come oldest first, so that a new chunk
only adds to the end of the context and the prompt's head (and its KV cache)
stays put; a chunk too similar to the text around the cursor is left out,
since the prompt's own window already shows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# llama.vim's threshold: above it two chunks count as the same code.
SIMILARITY_LIMIT = 0.9
# Chunks shorter than this say too little to be worth their header.
MIN_CHUNK_LINES = 3


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
    lines = text.split("\n")
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
        start, lines = lines_around(text, line, self.chunk_lines)
        if sum(1 for item in lines if item.strip()) < MIN_CHUNK_LINES:
            return False
        chunk = Chunk(source, start, "\n".join(lines).rstrip("\n") + "\n")
        with self._lock:
            self._last_line[source] = line
            if any(old.text == chunk.text for old, _ in self._chunks):
                return False
            kept = [
                (old, old_lines)
                for old, old_lines in self._chunks
                if line_similarity(old_lines, lines) <= SIMILARITY_LIMIT
            ]
            kept.append((chunk, lines))
            self._chunks = kept[-self.max_chunks :]
            self.version += 1
            while len(self._last_line) > 4 * self.max_chunks:
                del self._last_line[next(iter(self._last_line))]
        return True

    def note_edit(self, source: str, text: str, offset: int) -> bool:
        """An edit at ``offset``: a chunk is taken once the edits move half a chunk away."""
        line = text.count("\n", 0, offset)
        with self._lock:
            last = self._last_line.get(source)
        if last is not None and abs(line - last) < self.chunk_lines // 2:
            return False
        return self.note(source, text, line)

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
