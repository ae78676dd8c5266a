"""Token ids of recently built prompt parts, so that a keystroke tokenizes only what changed.

Building a completion prompt tokenizes the prefix window several times (the
search for its anchored start tries a few tails), the suffix and every
context snippet. While the user types on one line none of those texts
change, only the cursor line does: with Gemma's 262,144-token vocabulary
that was about 10 ms of every keystroke on a 5,000-line file, for the same
token ids as the keystroke before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

# Enough for a few documents' windows, suffixes and snippets; bounded in
# characters too, since a window is several kilobytes of text.
MAX_ENTRIES = 256
MAX_CHARS = 4_000_000


class TokenMemo:
    """A bounded LRU memo in front of a tokenizer (one worker thread uses it).

    Only worth it for long texts: short ones tokenize faster than they hash.
    """

    def __init__(
        self,
        tokenize: Callable[[str], list[int]],
        *,
        min_chars: int = 256,
        max_entries: int = MAX_ENTRIES,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self._tokenize = tokenize
        self._min_chars = min_chars
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._entries: OrderedDict[str, list[int]] = OrderedDict()
        self._chars = 0
        self.hits = 0
        self.misses = 0

    def __call__(self, text: str) -> list[int]:
        """The token ids of ``text`` (a fresh list the caller may change)."""
        if len(text) < self._min_chars:
            return self._tokenize(text)
        cached = self._entries.get(text)
        if cached is not None:
            self._entries.move_to_end(text)
            self.hits += 1
            return list(cached)
        self.misses += 1
        tokens = self._tokenize(text)
        self._entries[text] = tokens
        self._chars += len(text)
        while len(self._entries) > self._max_entries or self._chars > self._max_chars:
            dropped, _ = self._entries.popitem(last=False)
            self._chars -= len(dropped)
        return list(tokens)
