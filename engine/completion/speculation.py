"""Speculative next suggestion (the llama.vim idea).

After an inline completion is shown, the engine guesses that the user will
accept it and computes the suggestion for the position after it, at the
lowest priority. If the next request is exactly that state, the guess is
served at once; anything else discards it. A keystroke pre-empts the guess
in the worker, so speculation never delays typing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Guess(Generic[T]):
    code: str
    cursor: int
    task: asyncio.Task[T]


class Speculator(Generic[T]):
    """At most one guess per document; counts hits and misses."""

    def __init__(self) -> None:
        self._guesses: dict[str, _Guess[T]] = {}
        self.hits = 0
        self.misses = 0

    def start(self, key: str, code: str, cursor: int, work: Coroutine[Any, Any, T]) -> None:
        """Begin computing the suggestion for ``code`` at ``cursor`` (replaces any guess)."""
        self.discard(key)
        task = asyncio.create_task(work)
        # A discarded guess's failure is expected; retrieving it keeps asyncio quiet.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._guesses[key] = _Guess(code, cursor, task)

    def take(self, key: str, code: str, cursor: int) -> asyncio.Task[T] | None:
        """The guess for exactly this state, or None (and the stale guess is dropped)."""
        guess = self._guesses.pop(key, None)
        if guess is None:
            return None
        if guess.code == code and guess.cursor == cursor and not guess.task.cancelled():
            self.hits += 1
            return guess.task
        self.misses += 1
        guess.task.cancel()
        return None

    def discard(self, key: str) -> None:
        """Forget a document's guess, cancelling it if still running."""
        guess = self._guesses.pop(key, None)
        if guess is not None:
            guess.task.cancel()

    async def close(self) -> None:
        """Cancel every guess."""
        guesses = list(self._guesses.values())
        self._guesses.clear()
        for guess in guesses:
            guess.task.cancel()
        for guess in guesses:
            with contextlib.suppress(BaseException):
                await guess.task
