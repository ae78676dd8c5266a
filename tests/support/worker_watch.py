"""Watching a model worker from a test: the most requests it decoded at once."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from engine.runtime.runner import RunnerClient


class PeakActive:
    """Async context manager recording a worker's peak number of active requests."""

    def __init__(self, worker: RunnerClient) -> None:
        self._worker = worker
        self._task: asyncio.Task[None] | None = None
        self.peak = 0

    async def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, self._worker.active_requests)
            await asyncio.sleep(0.001)

    async def __aenter__(self) -> PeakActive:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
