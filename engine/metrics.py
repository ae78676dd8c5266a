"""Per-model inference metrics from recorded events.

Each inference is recorded with its measured duration and outcome; the
figures the API reports are computed from those records, never estimated.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


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
    )


class MetricsRecorder:
    """Keeps the most recent inference records of each model in memory."""

    def __init__(self, max_records_per_model: int = 10_000) -> None:
        self._max = max_records_per_model
        self._records: dict[str, deque[InferenceRecord]] = {}
        self._lock = threading.Lock()

    def record(self, record: InferenceRecord) -> None:
        """Add one record."""
        with self._lock:
            bucket = self._records.get(record.model_id)
            if bucket is None:
                bucket = self._records[record.model_id] = deque(maxlen=self._max)
            bucket.append(record)

    def records(
        self, model_id: str, start: float | None = None, end: float | None = None
    ) -> list[InferenceRecord]:
        """Records of a model, optionally within [start, end] (Unix time)."""
        with self._lock:
            bucket = list(self._records.get(model_id, ()))
        return [
            r
            for r in bucket
            if (start is None or r.started_at >= start) and (end is None or r.started_at <= end)
        ]

    def metrics(
        self, model_id: str, start: float | None = None, end: float | None = None
    ) -> ModelMetrics:
        """Aggregated figures for a model."""
        return aggregate(self.records(model_id, start, end))


def now() -> float:
    """Current Unix time (records use wall-clock time so ranges survive restarts)."""
    return time.time()
