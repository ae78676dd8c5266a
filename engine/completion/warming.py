"""Reading a changed context into the KV cache before a keystroke needs it.

llama.vim's ring update, for this engine: opening or editing another file
adds a chunk to the ring of recently seen code, so the context of the place
where the user last asked for a completion changes without a keystroke
there. The next completion at that place would then read the new snippets,
and whatever of the prompt after them the cache cannot shift into place,
while the user waits.

So once the editor has been quiet for a moment, the engine takes that place's
context again, keeps it for the place's next keystroke (the context memo) and
reads its prompt at the lowest priority, generating a single token. A
keystroke pre-empts the reading in the worker; what was read by then stays in
the slot's cache, so the keystroke only reads the rest.

The place may have moved: the change that altered its context is often an
edit in the same file, above or below it (typing at one place, then at
another). The place is then found again in the edited text
(:func:`place_after_edits`) unless an edit touched its line, where the next
keystroke takes the context itself.

This module holds the one pending warm-up (a newer change replaces it); what
a warm-up does is the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Quiet time before a warm-up starts: a burst of edits in another file (a
# paste, a formatter) schedules one warm-up, not one per change.
WARM_DELAY_SECONDS = 0.5


@dataclass
class WarmCounts:
    """What the warmer did (the engine's status reports them)."""

    scheduled: int = 0
    done: int = 0  # warm-ups that read a changed context
    skipped: int = 0  # nothing had changed at the place, or it had moved on


class ContextWarmer:
    """At most one pending warm-up; a new one replaces it (use on one event loop)."""

    def __init__(self, delay_seconds: float = WARM_DELAY_SECONDS) -> None:
        self.delay_seconds = delay_seconds
        self.counts = WarmCounts()
        self._task: asyncio.Task[None] | None = None

    def schedule(self, work: Callable[[], Coroutine[Any, Any, bool]]) -> None:
        """Run ``work`` after the quiet delay unless another schedule replaces it.

        ``work`` returns True when it read a changed context, False when it
        found nothing to do.
        """
        self.cancel()
        self.counts.scheduled += 1
        self._task = asyncio.create_task(self._run(work))

    async def _run(self, work: Callable[[], Coroutine[Any, Any, bool]]) -> None:
        await asyncio.sleep(self.delay_seconds)
        try:
            warmed = await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Pre-empted by a keystroke, the model unloaded, a deadline: a
            # warm-up is only ever an optimisation.
            log.debug("context warm-up ended: %s", exc)
            warmed = False
        if warmed:
            self.counts.done += 1
        else:
            self.counts.skipped += 1

    def cancel(self) -> None:
        """Drop the pending warm-up, stopping it if it has begun."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def idle(self) -> None:
        """Wait for the pending warm-up to end (tests and shutdown)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Cancel the pending warm-up and wait for it."""
        task = self._task
        self.cancel()
        if task is not None:
            with contextlib.suppress(BaseException):
                await task


def place_after_edits(old: str, new: str, cursor: int) -> int | None:
    """Where ``cursor`` of ``old`` is in ``new``, or None when the edits touched its line.

    The edits are taken as one changed span (the texts' common head and tail
    are unchanged): after the cursor's line, the cursor stays; before it, it
    moves by the change in length. Either way its whole line must read the
    same in ``new`` (text typed at the start or end of the line, or a line
    joined to it, is an edit there).
    """
    if old == new:
        return cursor
    head = _common_prefix(old, new)
    tail = _common_suffix(old, new, min(len(old), len(new)) - head)
    line_start = old.rfind("\n", 0, cursor) + 1
    line_end = _line_end(old, cursor)
    if head >= line_end:
        moved = cursor
    elif len(old) - tail <= line_start:
        moved = cursor + len(new) - len(old)
    else:
        return None
    start = new.rfind("\n", 0, moved) + 1
    if new[start : _line_end(new, moved)] != old[line_start:line_end]:
        return None
    return moved


def _line_end(text: str, offset: int) -> int:
    end = text.find("\n", offset)
    return len(text) if end < 0 else end


def _common_prefix(first: str, second: str) -> int:
    # A binary search over slice comparisons: C speed on a long document.
    low, high = 0, min(len(first), len(second))
    while low < high:
        middle = (low + high + 1) // 2
        if first[:middle] == second[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(first: str, second: str, limit: int) -> int:
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if first[len(first) - middle :] == second[len(second) - middle :]:
            low = middle
        else:
            high = middle - 1
    return low
