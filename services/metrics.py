"""Per-model inference metrics from recorded events, kept in the store.

Each inference is recorded with its measured duration and outcome; every
figure the API reports is computed from those records (and, for the
all-time counters, from the sums of the records pruned), so the numbers
survive a restart and are never estimated.

Records older than the retention period are pruned (the table would
otherwise grow by a row per keystroke for as long as the server runs); what
they added up to moves to ``inference_totals`` in the same transaction, so
the all-time counters never go down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, union_all, update

from engine.events import InferenceRecord
from services.store import Store

log = logging.getLogger(__name__)

# How often the writer thread prunes, and how many records one transaction
# prunes (a short write lock, however far behind the pruning is).
PRUNE_EVERY_SECONDS = 3600.0
PRUNE_BATCH = 5000
# pg_advisory_xact_lock key: replicas prune one at a time ("aiprune").
_PRUNE_LOCK = 0x61697072756E65


@dataclass(frozen=True)
class ModelMetrics:
    """Aggregates over a time range; None where there are no records."""

    inference_count: int
    average_inference_time_ms: float | None
    p95_inference_time_ms: float | None
    success_rate: float | None
    error_rate: float | None
    cache_hit_rate: float | None
    tokens: int
    first_at: float | None = None
    last_at: float | None = None


@dataclass(frozen=True)
class ModelTotals:
    """All-time counters of one model (for Prometheus)."""

    model_id: str
    successes: int
    failures: int
    cache_hits: int
    duration_ms_sum: float
    tokens: int


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def aggregate(records: list[InferenceRecord]) -> ModelMetrics:
    """Compute the reported figures from raw records."""
    if not records:
        return ModelMetrics(0, None, None, None, None, None, 0)
    durations = [r.duration_ms for r in records]
    successes = sum(1 for r in records if r.success)
    cached = sum(1 for r in records if r.cached)
    return ModelMetrics(
        inference_count=len(records),
        average_inference_time_ms=sum(durations) / len(durations),
        p95_inference_time_ms=percentile(durations, 0.95),
        success_rate=successes / len(records),
        error_rate=1.0 - successes / len(records),
        cache_hit_rate=cached / len(records),
        tokens=sum(r.tokens for r in records),
        first_at=min(r.started_at for r in records),
        last_at=max(r.started_at for r in records),
    )


class MetricsRecorder:
    """Stores inference records in the store, in batches, off the event loop.

    :meth:`record` only appends to a buffer, so it is safe to call from the
    event loop on every keystroke. A writer thread flushes the buffer every
    ``flush_seconds`` (or sooner when it fills); reads flush first, so every
    figure includes the inferences recorded before it was asked for.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_seconds: float = 0.5,
        batch_size: int = 256,
        retention_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._events = store.tables.inference_events
        self._totals = store.tables.inference_totals
        self._retention = retention_seconds or None  # 0 or None: keep everything
        self._clock = clock
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._pending: list[InferenceRecord] = []
        self._lock = threading.Lock()
        # Serialises flushes so records are written in the order they came.
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="metrics-writer", daemon=True
            )
            self._writer.start()

    def close(self) -> None:
        """Write what is pending and stop the writer thread."""
        self._closed = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
            self._writer = None
        self.flush()

    def record(self, record: InferenceRecord) -> None:
        """Queue one record (no I/O: called on the publisher's thread)."""
        with self._lock:
            self._pending.append(record)
            full = len(self._pending) >= self._batch_size
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every queued record in one transaction; returns how many."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            with self._store.transaction() as tx:
                tx.execute(
                    self._events.insert(),
                    [
                        {
                            "model_id": r.model_id,
                            "kind": r.kind,
                            "started_at": r.started_at,
                            "duration_ms": r.duration_ms,
                            "success": int(r.success),
                            "cached": int(r.cached),
                            "tokens": r.tokens,
                            "error_code": r.error_code,
                        }
                        for r in batch
                    ],
                )
            return len(batch)

    def _write_loop(self) -> None:
        last_prune = -PRUNE_EVERY_SECONDS
        while not self._closed:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            try:
                self.flush()
                if self._retention is not None and (
                    time.monotonic() - last_prune >= PRUNE_EVERY_SECONDS
                ):
                    last_prune = time.monotonic()
                    self.prune()
            except Exception:  # a full disk must not end metrics for good
                log.exception("writing metrics failed")

    def prune(self) -> int:
        """Fold the records older than the retention into the totals; returns how many."""
        if self._retention is None:
            return 0
        self.flush()  # queued records may be old already
        cutoff = self._clock() - self._retention
        pruned = 0
        while True:
            done = self._prune_batch(cutoff)
            pruned += done
            if done < PRUNE_BATCH or self._closed:
                break
        if pruned:
            log.info("metrics: pruned %d inference records older than the retention", pruned)
        return pruned

    def _prune_batch(self, cutoff: float) -> int:
        e, t = self._events, self._totals
        with self._store.transaction() as tx:
            if tx.dialect.name == "postgresql":
                # Replicas prune one at a time, so that no two add the same
                # records to the totals or race to insert a model's row.
                tx.execute(select(func.pg_advisory_xact_lock(_PRUNE_LOCK)))
            rows = list(
                tx.execute(
                    select(
                        e.c.id, e.c.model_id, e.c.success, e.c.cached, e.c.duration_ms, e.c.tokens
                    )
                    .where(e.c.started_at < cutoff)
                    .order_by(e.c.id)
                    .limit(PRUNE_BATCH)
                ).mappings()
            )
            if not rows:
                return 0
            sums: dict[str, list[float]] = {}
            for row in rows:
                entry = sums.setdefault(row["model_id"], [0, 0, 0, 0.0, 0])
                entry[0] += row["success"]
                entry[1] += 1 - row["success"]
                entry[2] += row["cached"]
                entry[3] += row["duration_ms"]
                entry[4] += row["tokens"]
            for model_id, (ok, failed, hits, ms, tokens) in sums.items():
                changed = tx.execute(
                    update(t)
                    .where(t.c.model_id == model_id)
                    .values(
                        successes=t.c.successes + int(ok),
                        failures=t.c.failures + int(failed),
                        cache_hits=t.c.cache_hits + int(hits),
                        duration_ms_sum=t.c.duration_ms_sum + ms,
                        tokens=t.c.tokens + int(tokens),
                    )
                ).rowcount
                if not changed:
                    tx.execute(
                        t.insert().values(
                            model_id=model_id,
                            successes=int(ok),
                            failures=int(failed),
                            cache_hits=int(hits),
                            duration_ms_sum=ms,
                            tokens=int(tokens),
                        )
                    )
            tx.execute(e.delete().where(e.c.id.in_([row["id"] for row in rows])))
            return len(rows)

    def records(
        self, model_id: str, start: float | None = None, end: float | None = None
    ) -> list[InferenceRecord]:
        """Records of a model, optionally within [start, end] (Unix time)."""
        self.flush()
        e = self._events
        rows = self._store.query(
            select(
                e.c.model_id,
                e.c.kind,
                e.c.started_at,
                e.c.duration_ms,
                e.c.success,
                e.c.cached,
                e.c.tokens,
                e.c.error_code,
            )
            .where(
                e.c.model_id == model_id,
                e.c.started_at >= (start if start is not None else -1.0),
                e.c.started_at <= (end if end is not None else 1e18),
            )
            .order_by(e.c.started_at, e.c.id)
        )
        return [
            InferenceRecord(
                model_id=row["model_id"],
                kind=row["kind"],
                started_at=row["started_at"],
                duration_ms=row["duration_ms"],
                success=bool(row["success"]),
                cached=bool(row["cached"]),
                tokens=row["tokens"],
                error_code=row["error_code"],
            )
            for row in rows
        ]

    def metrics(
        self, model_id: str, start: float | None = None, end: float | None = None
    ) -> ModelMetrics:
        """Aggregated figures for a model, computed in the store.

        Only the aggregates and one duration (the 95th percentile's, found by
        its rank) leave the database, so the figures cost the same memory
        whether a model has ten records or ten million; :func:`aggregate` on
        the same records gives the same figures.
        """
        self.flush()
        e = self._events
        selected = (
            e.c.model_id == model_id,
            e.c.started_at >= (start if start is not None else -1.0),
            e.c.started_at <= (end if end is not None else 1e18),
        )
        # The count and the row at the 95th percentile's rank are two reads; a
        # prune between them (this replica's writer or another replica) can
        # leave fewer rows than counted: then both are read again.
        for _ in range(5):
            row = self._store.query(
                select(
                    func.count().label("n"),
                    func.sum(e.c.duration_ms).label("ms"),
                    func.sum(e.c.success).label("ok"),
                    func.sum(e.c.cached).label("hits"),
                    func.sum(e.c.tokens).label("tokens"),
                    func.min(e.c.started_at).label("first"),
                    func.max(e.c.started_at).label("last"),
                ).where(*selected)
            )[0]
            count = int(row["n"])
            if count == 0:
                return ModelMetrics(0, None, None, None, None, None, 0)
            rank = max(1, math.ceil(0.95 * count))  # nearest rank, as percentile() does
            found = self._store.query(
                select(e.c.duration_ms)
                .where(*selected)
                .order_by(e.c.duration_ms)
                .offset(rank - 1)
                .limit(1)
            )
            if found:
                p95 = found[0]["duration_ms"]
                break
        else:
            raise RuntimeError("inference records kept disappearing while they were read")
        successes = int(row["ok"])
        return ModelMetrics(
            inference_count=count,
            average_inference_time_ms=float(row["ms"]) / count,
            p95_inference_time_ms=float(p95),
            success_rate=successes / count,
            error_rate=1.0 - successes / count,
            cache_hit_rate=int(row["hits"]) / count,
            tokens=int(row["tokens"]),
            first_at=float(row["first"]),
            last_at=float(row["last"]),
        )

    def totals(self) -> list[ModelTotals]:
        """All-time counters per model: the pruned records' sums plus the kept ones.

        One statement reads both, so a prune committing in between cannot
        count a record twice or not at all (a counter must never go down).
        """
        self.flush()
        e, t = self._events, self._totals
        kept = select(
            e.c.model_id,
            func.sum(e.c.success).label("ok"),
            func.sum(1 - e.c.success).label("failed"),
            func.sum(e.c.cached).label("hits"),
            func.sum(e.c.duration_ms).label("ms"),
            func.sum(e.c.tokens).label("tokens"),
        ).group_by(e.c.model_id)
        folded = select(
            t.c.model_id,
            t.c.successes.label("ok"),
            t.c.failures.label("failed"),
            t.c.cache_hits.label("hits"),
            t.c.duration_ms_sum.label("ms"),
            t.c.tokens.label("tokens"),
        )
        both = union_all(kept, folded).subquery()
        rows = self._store.query(
            select(
                both.c.model_id,
                func.sum(both.c.ok).label("ok"),
                func.sum(both.c.failed).label("failed"),
                func.sum(both.c.hits).label("hits"),
                func.sum(both.c.ms).label("ms"),
                func.sum(both.c.tokens).label("tokens"),
            )
            .group_by(both.c.model_id)
            .order_by(both.c.model_id)
        )
        return [
            ModelTotals(
                model_id=row["model_id"],
                successes=int(row["ok"] or 0),
                failures=int(row["failed"] or 0),
                cache_hits=int(row["hits"] or 0),
                duration_ms_sum=float(row["ms"] or 0.0),
                tokens=int(row["tokens"] or 0),
            )
            for row in rows
        ]


def now() -> float:
    """Current Unix time (records use wall-clock time so ranges survive restarts)."""
    return time.time()
