"""Batch inference: many requests in one call, run with bounded concurrency, stored.

Each item is an awaitable that produces its result body. Items for one model
run concurrently, so that model's worker decodes them in one continuous batch;
items for different models run in parallel. ``max_concurrent`` bounds both.
Finished batches are stored and published as ``batch_completed`` in the same
transaction.

A synchronous batch runs inside its HTTP request, so a process that dies
takes it along: it can only be reported as failed. Each one is leased to the
replica running it, renewed while that replica lives; a batch whose lease
expired is marked failed by whichever replica notices (on SQLite, which has
one process, every running one is at the next start). Background batches
are jobs, taken over like any job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update

from engine.errors import EngineError, InferenceTimeoutError, NotFoundError
from engine.events import EngineEvent, utc_timestamp
from services.events import StateEventBus
from services.store import Store

log = logging.getLogger(__name__)

BatchStatus = Literal["running", "completed", "partial", "failed"]


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch."""

    id: str
    model_id: str
    run: Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ItemOutcome:
    """The result (or error) of one item, with its measured time."""

    id: str
    result: dict[str, Any] | None
    error: EngineError | None
    processing_time_ms: float


async def run_items(
    items: Sequence[BatchItem],
    *,
    parallel: bool,
    max_concurrent: int,
    timeout_seconds: float,
    on_finished: Callable[[ItemOutcome], None] | None = None,
) -> list[ItemOutcome]:
    """Run the items (in input order of results) within one overall deadline.

    ``on_finished`` hears of each outcome as it comes (progress for a client).
    """
    limit = asyncio.Semaphore(max_concurrent if parallel else 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds

    async def one(item: BatchItem) -> ItemOutcome:
        outcome = await attempt(item)
        if on_finished is not None:
            on_finished(outcome)
        return outcome

    async def attempt(item: BatchItem) -> ItemOutcome:
        async with limit:
            started = time.monotonic()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise InferenceTimeoutError("the batch ran out of time before this request")
                result = await asyncio.wait_for(item.run(), timeout=remaining)
            except TimeoutError:
                error: EngineError = InferenceTimeoutError(
                    f"request did not finish within the batch's {timeout_seconds:g} s"
                )
                return ItemOutcome(item.id, None, error, (time.monotonic() - started) * 1000.0)
            except EngineError as exc:
                return ItemOutcome(item.id, None, exc, (time.monotonic() - started) * 1000.0)
            return ItemOutcome(item.id, result, None, (time.monotonic() - started) * 1000.0)

    return list(await asyncio.gather(*(one(item) for item in items)))


def batch_status(outcomes: Sequence[ItemOutcome]) -> BatchStatus:
    """completed (all succeeded), partial, or failed (none succeeded)."""
    succeeded = sum(1 for o in outcomes if o.error is None)
    if succeeded == len(outcomes):
        return "completed"
    return "partial" if succeeded else "failed"


class BatchStore:
    """Stored batches, owned by their caller, leased to the replica that runs them."""

    def __init__(
        self,
        store: Store,
        bus: StateEventBus,
        *,
        lease_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._batches = store.tables.batches
        self._bus = bus
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._owner = uuid.uuid4().hex
        self._watcher: asyncio.Task[None] | None = None
        # Items finished / total of the batches running in this process: live
        # progress for GET /batch/{id}, not stored (another replica has none).
        self._progress: dict[str, tuple[int, int]] = {}
        self._progress_lock = threading.Lock()

    def create(self, owner: str | None, background: bool) -> str:
        """A new batch id, stored as running (leased to this replica when synchronous)."""
        batch_id = f"batch_{uuid.uuid4().hex[:20]}"
        self._store.execute(
            self._batches.insert().values(
                id=batch_id,
                owner=owner,
                status="running",
                background=int(background),
                created_at=utc_timestamp(),
                lease_owner=None if background else self._owner,
                lease_until=0.0 if background else self._clock() + self._lease_seconds,
            )
        )
        return batch_id

    def track(self, batch_id: str, total: int) -> None:
        """A batch of ``total`` items starts running in this process."""
        with self._progress_lock:
            self._progress[batch_id] = (0, total)

    def advance(self, batch_id: str) -> None:
        """One more item of a running batch has finished."""
        with self._progress_lock:
            done, total = self._progress.get(batch_id, (0, 0))
            self._progress[batch_id] = (min(done + 1, total), total)

    def forget(self, batch_id: str) -> None:
        """The batch is no longer running here (finished or failed)."""
        with self._progress_lock:
            self._progress.pop(batch_id, None)

    def progress(self, batch_id: str) -> tuple[int, int] | None:
        """(finished, total) items of a batch running in this process, else None."""
        with self._progress_lock:
            return self._progress.get(batch_id)

    def finish(
        self, batch_id: str, owner: str | None, status: BatchStatus, response: dict[str, Any]
    ) -> None:
        """Store the response and publish ``batch_completed`` in one transaction."""
        summary = response.get("summary", {})
        with self._store.transaction() as tx:
            tx.execute(
                update(self._batches)
                .where(self._batches.c.id == batch_id)
                .values(
                    status=status,
                    response=json.dumps(response),
                    finished_at=utc_timestamp(),
                    lease_owner=None,
                    lease_until=0.0,
                )
            )
            self._bus.publish(
                EngineEvent(
                    "batch_completed",
                    {"batch_id": batch_id, "status": status, "summary": summary},
                    owner=owner,
                ),
                tx,
            )

    def get(self, batch_id: str, owner: str | None) -> tuple[BatchStatus, dict[str, Any] | None]:
        """Status and stored response of a batch of this owner (404 otherwise)."""
        b = self._batches
        rows = self._store.query(
            select(b.c.owner, b.c.status, b.c.response).where(b.c.id == batch_id)
        )
        if not rows or rows[0]["owner"] != owner:
            raise NotFoundError(f"batch '{batch_id}' not found", {"batch_id": batch_id})
        response = json.loads(rows[0]["response"]) if rows[0]["response"] else None
        return rows[0]["status"], response

    def fail_interrupted(self) -> int:
        """Mark synchronous batches cut off by a dead process as failed; returns how many.

        On SQLite (one process) that is every running one at start; on a
        shared store, those whose replica stopped renewing their lease.
        """
        b = self._batches
        cut_off = [b.c.status == "running", b.c.background == 0]
        if self._store.shared:
            cut_off.append(b.c.lease_until < self._clock())
        failed = self._store.execute(
            update(b)
            .where(*cut_off)
            .values(status="failed", finished_at=utc_timestamp(), lease_owner=None, lease_until=0.0)
        )
        if failed:
            log.warning("%d synchronous batch(es) were cut off by a dead process: failed", failed)
        return failed

    def renew(self) -> int:
        """Extend the leases of the synchronous batches this replica runs; returns how many."""
        b = self._batches
        return self._store.execute(
            update(b)
            .where(b.c.lease_owner == self._owner, b.c.status == "running")
            .values(lease_until=self._clock() + self._lease_seconds)
        )

    async def start(self) -> None:
        """Fail what a dead process left running; on a shared store, keep watching."""
        await asyncio.to_thread(self.fail_interrupted)
        if self._store.shared and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="batch-leases")

    async def stop(self) -> None:
        """Stop renewing (a batch still running here fails once its lease expires)."""
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        watcher.cancel()
        if watcher.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await asyncio.to_thread(self.renew)
                await asyncio.to_thread(self.fail_interrupted)
            except Exception:
                log.exception("renewing batch leases failed")
