"""Batch inference: many requests in one call, run with bounded concurrency, stored.

Each item is an awaitable that produces its result body. Items for one model
run concurrently, so that model's worker decodes them in one continuous batch;
items for different models run in parallel. ``max_concurrent`` bounds both.
Finished batches are stored and published as ``batch_completed`` in the same
transaction.
"""

from __future__ import annotations

import asyncio
import json
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
) -> list[ItemOutcome]:
    """Run the items (in input order of results) within one overall deadline."""
    limit = asyncio.Semaphore(max_concurrent if parallel else 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds

    async def one(item: BatchItem) -> ItemOutcome:
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
    """Stored batches, owned by their caller."""

    def __init__(self, store: Store, bus: StateEventBus) -> None:
        self._store = store
        self._batches = store.tables.batches
        self._bus = bus

    def create(self, owner: str | None, background: bool) -> str:
        """A new batch id, stored as running."""
        batch_id = f"batch_{uuid.uuid4().hex[:20]}"
        self._store.execute(
            self._batches.insert().values(
                id=batch_id,
                owner=owner,
                status="running",
                background=int(background),
                created_at=utc_timestamp(),
            )
        )
        return batch_id

    def finish(
        self, batch_id: str, owner: str | None, status: BatchStatus, response: dict[str, Any]
    ) -> None:
        """Store the response and publish ``batch_completed`` in one transaction."""
        summary = response.get("summary", {})
        with self._store.transaction() as tx:
            tx.execute(
                update(self._batches)
                .where(self._batches.c.id == batch_id)
                .values(status=status, response=json.dumps(response), finished_at=utc_timestamp())
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
        """Mark synchronous batches cut off by a restart as failed; returns how many.

        Background batches are jobs and run again; a synchronous one lost its
        client with the process, so it can only be reported as failed. With
        several replicas on one store, another replica's batch may be running
        right now: only a replica that owns the store alone (SQLite) can tell.
        """
        if self._store.shared:
            return 0
        b = self._batches
        return self._store.execute(
            update(b)
            .where(b.c.status == "running", b.c.background == 0)
            .values(status="failed", finished_at=utc_timestamp())
        )
