"""Sequence slots of a shared context: which tokens each one's KV cache holds.

A context decodes up to ``n_seq_max`` sequences side by side; each sequence id
is a slot. A slot's cells stay in the KV cache after its request ends, so the
next request that starts with the same tokens re-reads only what differs.

This module is bookkeeping only (no llama.cpp): the worker performs the cache
operations and records their outcome here, and the scheduler reads these
records to place requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.runtime.messages import GenerationRequest


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class ChunkMove:
    """Cached cells at positions [source, source + length) move to [target, target + length)."""

    source: int
    target: int
    length: int


def reusable_chunks(
    cached: Sequence[int], tokens: Sequence[int], start: int, min_chunk: int, limit: int
) -> tuple[int, list[ChunkMove]]:
    """Runs of ``cached`` past ``start`` that ``tokens`` repeats further left.

    The mechanism behind llama-server's ``--cache-reuse``: when a prompt loses
    tokens in the middle (the prefix window moved down, a context snippet
    went away), the cached cells after the gap are still good, only at the
    wrong positions. Walking both lists from the end of their common prefix,
    every run of at least ``min_chunk`` equal tokens is kept and moved left
    over the gap (llama.cpp re-rotates the moved keys), instead of being
    decoded again. Returns how many leading prompt tokens the cache then
    holds (at most ``limit``) and the moves, in the order to apply them.
    """
    head_c = head_p = start
    moves: list[ChunkMove] = []
    n_cached, n_tokens = len(cached), min(len(tokens), limit)
    while head_c < n_cached and head_p < n_tokens:
        n_match = 0
        while (
            head_c + n_match < n_cached
            and head_p + n_match < n_tokens
            and cached[head_c + n_match] == tokens[head_p + n_match]
        ):
            n_match += 1
        if n_match >= min_chunk:
            moves.append(ChunkMove(head_c, head_p, n_match))
            head_c += n_match
            head_p += n_match
        else:
            head_c += 1
    return head_p, moves


@dataclass(eq=False, slots=True)
class Running:
    """A request admitted into a slot, and how far its sequence has been decoded."""

    request: GenerationRequest
    seq_id: int
    prompt: list[int]
    pending: list[int]  # tokens still to be decoded for this sequence
    n_past: int  # position of the next token in the sequence
    reserved: int  # KV cells this sequence may grow to (prompt plus max_tokens)
    n_generated: int = 0  # tokens sampled so far (the prompt is read once it is not 0)


@dataclass(eq=False, slots=True)
class Slot:
    """One sequence id of the shared context and the tokens its cache holds."""

    seq_id: int
    cached: list[int] = field(default_factory=list)
    running: Running | None = None
    last_used: float = 0.0


class SlotTable:
    """The slots of one context: occupancy, cached tokens and KV accounting."""

    def __init__(self, n_slots: int) -> None:
        self.slots = [Slot(seq_id=i) for i in range(n_slots)]
        # The sequences decoding now, in slot order; kept up to date here
        # rather than collected from the slots at every decode step.
        self._running: list[Running] = []
        # Read without the worker's lock (an int read is atomic): active requests.
        self.n_running = 0

    def __len__(self) -> int:
        return len(self.slots)

    def running(self) -> list[Running]:
        """The sequences decoding now, in slot order (the table's own list: do not modify)."""
        return self._running

    def free(self) -> list[Slot]:
        """Slots no request occupies (their caches may still hold tokens)."""
        return [slot for slot in self.slots if slot.running is None]

    def kv_in_use(self) -> int:
        """KV cells spoken for: what running sequences may grow to, what idle caches hold."""
        used = 0
        for slot in self.slots:
            used += slot.running.reserved if slot.running is not None else len(slot.cached)
        return used

    def best_donor(self, slot: Slot, tokens: list[int]) -> tuple[Slot | None, int]:
        """The other slot whose cache shares the longest prefix with ``tokens``.

        The length is capped one short of the prompt: its last token must be
        decoded again to produce the logits the first sample is drawn from.
        """
        best: Slot | None = None
        length = 0
        for other in self.slots:
            if other is slot:
                continue
            common = min(common_prefix(other.cached, tokens), len(tokens) - 1)
            if common > length:
                best, length = other, common
        return best, length

    def occupy(self, slot: Slot, running: Running) -> None:
        """Record that ``running`` holds ``slot``, whose cache keeps its first ``n_past`` tokens."""
        slot.cached = running.prompt[: running.n_past]
        slot.running = running
        self._running = [s.running for s in self.slots if s.running is not None]
        self.n_running += 1

    def rewind(self, running: Running) -> None:
        """The slot's cache could not keep a prefix (recurrent state): read it all."""
        self.slots[running.seq_id].cached = []
        running.pending = running.prompt[:]
        running.n_past = 0

    def advance(self, running: Running, added: int) -> None:
        """The first ``added`` pending tokens were decoded into the slot's cache."""
        pending = running.pending
        self.slots[running.seq_id].cached.extend(pending[:added])
        running.n_past += added
        running.pending = pending[added:]

    def sampled(self, running: Running, token: int) -> None:
        """A token was sampled for ``running``; it is fed back on the next step."""
        running.n_generated += 1
        running.pending = [token]

    def release(self, running: Running, now: float) -> None:
        """The request left its slot; the cache keeps its tokens for the next one."""
        slot = self.slots[running.seq_id]
        if slot.running is running:
            slot.running = None
            slot.last_used = now
            # A new list, so that a caller iterating the old one is not disturbed.
            self._running = [s.running for s in self.slots if s.running is not None]
            self.n_running -= 1

    def forget(self, seq_id: int) -> None:
        """The slot's cells were removed from the KV cache."""
        self.slots[seq_id].cached = []
