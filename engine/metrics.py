"""Per-model inference metrics from recorded events, kept in SQLite.

Each inference is recorded with its measured duration and outcome; every
figure the API reports is computed from those records, so the numbers survive
a restart and are never estimated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from engine.store import Store

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS inference_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        started_at REAL NOT NULL,
        duration_ms REAL NOT NULL,
        success INTEGER NOT NULL,
        cached INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        error_code TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS inference_events_model_time "
    "ON inference_events (model_id, started_at)",
)


@dataclass(frozen=True)
class InferenceRecord:
    """One finished (or failed) inference."""

    model_id: str
    kind: str
    started_at: float  # Unix time
    duration_ms: float
    success: bool
    cached: bool
    tokens: int
    error_code: str | None = None


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
    """Writes inference records to SQLite and aggregates them on demand."""

    def __init__(self, store: Store) -> None:
        self._store = store
        store.ensure_schema("metrics", _SCHEMA)

    def record(self, record: InferenceRecord) -> None:
        """Persist one record."""
        self._store.execute(
            "INSERT INTO inference_events (model_id, kind, started_at, duration_ms, success, "
            "cached, tokens, error_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.model_id,
                record.kind,
                record.started_at,
                record.duration_ms,
                int(record.success),
                int(record.cached),
                record.tokens,
                record.error_code,
            ),
        )

    def records(
        self, model_id: str, start: float | None = None, end: float | None = None
    ) -> list[InferenceRecord]:
        """Records of a model, optionally within [start, end] (Unix time)."""
        rows = self._store.query(
            "SELECT model_id, kind, started_at, duration_ms, success, cached, tokens, error_code "
            "FROM inference_events WHERE model_id = ? AND started_at >= ? AND started_at <= ? "
            "ORDER BY started_at",
            (model_id, start if start is not None else -1.0, end if end is not None else 1e18),
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
        """Aggregated figures for a model."""
        return aggregate(self.records(model_id, start, end))

    def totals(self) -> list[ModelTotals]:
        """All-time counters per model."""
        rows = self._store.query(
            "SELECT model_id, SUM(success) AS ok, SUM(1 - success) AS failed, "
            "SUM(cached) AS hits, SUM(duration_ms) AS ms, SUM(tokens) AS tokens "
            "FROM inference_events GROUP BY model_id ORDER BY model_id"
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
