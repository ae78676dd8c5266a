"""The tree-sitter context of a cursor line, kept while the user types on that line.

What is typed on the cursor line changes how tree-sitter parses it (an open
parenthesis, a half-written keyword), and with it which definitions count as
nearby. Context snippets go first in the prompt, so a changed snippet would
invalidate the whole cached prompt on a keystroke. The context is therefore
computed once per cursor line and reused for as long as the rest of the
document is unchanged, checked by exact comparison, never by a hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from engine.syntax import CompletionContext


@dataclass(frozen=True)
class _Entry:
    head: str  # the document before the cursor line
    tail: str  # the document after the cursor line
    context: CompletionContext | None


def line_bounds(code: str, cursor: int) -> tuple[int, int]:
    """Start and end offsets of the line holding ``cursor`` (end excludes the newline)."""
    start = code.rfind("\n", 0, cursor) + 1
    end = code.find("\n", cursor)
    return start, len(code) if end < 0 else end


class ContextMemo:
    """Per document: the context computed for its cursor line; bounded, thread-safe."""

    def __init__(self, max_documents: int = 64) -> None:
        self._max = max_documents
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: str, code: str, cursor: int) -> tuple[bool, CompletionContext | None]:
        """``(True, context)`` when only the cursor line changed since it was stored."""
        start, end = line_bounds(code, cursor)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            self._entries.move_to_end(key)
        # Lengths first: a different document fails without comparing text.
        if (
            len(entry.head) == start
            and len(entry.tail) == len(code) - end
            and code.startswith(entry.head)
            and code.endswith(entry.tail)
        ):
            return True, entry.context
        return False, None

    def store(self, key: str, code: str, cursor: int, context: CompletionContext | None) -> None:
        """Remember the context computed for the cursor line of ``code``."""
        start, end = line_bounds(code, cursor)
        entry = _Entry(code[:start], code[end:], context)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
