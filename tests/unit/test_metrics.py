"""Per-model figures computed in the store agree with the same figures computed from the records.

Every test runs on SQLite and on a real PostgreSQL server (tests/support/servers.py).
"""

from __future__ import annotations

import random

from engine.events import InferenceRecord
from services.metrics import MetricsRecorder, aggregate
from services.store import Store


def recorder_with(store_url: str, records: list[InferenceRecord]) -> MetricsRecorder:
    recorder = MetricsRecorder(Store(store_url))
    for record in records:
        recorder.record(record)
    return recorder


def random_records(model_id: str, count: int, seed: int) -> list[InferenceRecord]:
    rng = random.Random(seed)
    return [
        InferenceRecord(
            model_id=model_id,
            kind=rng.choice(["completion", "generation"]),
            started_at=1_000.0 + i + rng.random() / 2,
            duration_ms=round(rng.lognormvariate(4, 1), 3),
            success=rng.random() < 0.9,
            cached=rng.random() < 0.3,
            tokens=rng.randrange(0, 64),
        )
        for i in range(count)
    ]


def test_store_figures_match_the_records_figures(store_url: str) -> None:
    mine = random_records("m", 157, seed=1)
    other = random_records("other", 40, seed=2)
    recorder = recorder_with(store_url, mine + other)
    for start, end in [(None, None), (1_050.0, None), (None, 1_020.0), (1_010.0, 1_090.0)]:
        chosen = [
            r
            for r in mine
            if (start is None or r.started_at >= start) and (end is None or r.started_at <= end)
        ]
        got, want = recorder.metrics("m", start, end), aggregate(chosen)
        assert got.inference_count == want.inference_count
        # The 95th percentile is one of the recorded durations, found by its rank.
        assert got.p95_inference_time_ms == want.p95_inference_time_ms
        assert got.tokens == want.tokens
        assert got.first_at == want.first_at and got.last_at == want.last_at
        for name in ("average_inference_time_ms", "success_rate", "error_rate", "cache_hit_rate"):
            assert abs(getattr(got, name) - getattr(want, name)) < 1e-9, name


def test_a_model_without_records_in_the_range_has_no_figures(store_url: str) -> None:
    recorder = recorder_with(store_url, random_records("m", 10, seed=3))
    empty = recorder.metrics("m", 5_000.0, None)
    assert empty.inference_count == 0
    assert empty.p95_inference_time_ms is None and empty.average_inference_time_ms is None
    assert recorder.metrics("unknown").inference_count == 0


def test_one_record_is_its_own_percentile(store_url: str) -> None:
    recorder = recorder_with(store_url, random_records("m", 1, seed=4))
    only = recorder.records("m")[0]
    figures = recorder.metrics("m")
    assert figures.inference_count == 1
    assert figures.p95_inference_time_ms == only.duration_ms
    assert figures.average_inference_time_ms == only.duration_ms
