"""Per-model figures computed in the store agree with the same figures computed from the records.

Every test runs on SQLite and on a real PostgreSQL server (tests/support/servers.py).
"""

from __future__ import annotations

import contextlib
import random
import threading
from typing import Any

import pytest

from engine.events import InferenceRecord
from services import metrics
from services.metrics import MetricsRecorder, ModelTotals, aggregate
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


def _sums(records: list[InferenceRecord]) -> list[ModelTotals]:
    """The all-time counters the records add up to, per model."""
    models = sorted({r.model_id for r in records})
    return [
        ModelTotals(
            model_id=m,
            successes=sum(r.success for r in records if r.model_id == m),
            failures=sum(not r.success for r in records if r.model_id == m),
            cache_hits=sum(r.cached for r in records if r.model_id == m),
            duration_ms_sum=sum(r.duration_ms for r in records if r.model_id == m),
            tokens=sum(r.tokens for r in records if r.model_id == m),
        )
        for m in models
    ]


def _same_totals(got: list[ModelTotals], want: list[ModelTotals]) -> None:
    assert [(t.model_id, t.successes, t.failures, t.cache_hits, t.tokens) for t in got] == [
        (t.model_id, t.successes, t.failures, t.cache_hits, t.tokens) for t in want
    ]
    for a, b in zip(got, want, strict=True):
        assert abs(a.duration_ms_sum - b.duration_ms_sum) < 1e-6


def test_pruning_drops_old_records_and_keeps_the_all_time_counters(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records at 1,000-1,200 s; "now" is 1,100 s with a retention of 50 s.
    monkeypatch.setattr(metrics, "PRUNE_BATCH", 7)  # several batches
    records = random_records("m", 150, seed=5) + random_records("other", 50, seed=6)
    recorder = MetricsRecorder(Store(store_url), retention_seconds=50.0, clock=lambda: 1_100.0)
    for record in records:
        recorder.record(record)
    recorder.flush()
    old = [r for r in records if r.started_at < 1_050.0]
    assert recorder.prune() == len(old)
    _same_totals(recorder.totals(), _sums(records))
    kept = [r for r in records if r.started_at >= 1_050.0 and r.model_id == "m"]
    assert [r.started_at for r in recorder.records("m")] == sorted(r.started_at for r in kept)
    assert recorder.metrics("m").inference_count == len(kept)
    assert recorder.prune() == 0
    # A second round adds to the folded sums (the UPDATE path), a new model
    # gets its row (the INSERT path).
    later = random_records("m", 20, seed=7) + random_records("third", 5, seed=8)
    for record in later:
        recorder.record(record)
    recorder._clock = lambda: 1_300.0  # everything is old now
    assert recorder.prune() == len(records) - len(old) + len(later)
    assert recorder.records("m") == []
    _same_totals(recorder.totals(), _sums(records + later))


def test_replicas_pruning_together_count_each_record_once(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "PRUNE_BATCH", 5)
    records = [r for seed in range(4) for r in random_records(f"m{seed}", 60, seed=seed)]
    first = MetricsRecorder(Store(store_url), retention_seconds=1.0, clock=lambda: 5_000.0)
    for record in records:
        first.record(record)
    first.flush()
    second = MetricsRecorder(Store(store_url), retention_seconds=1.0, clock=lambda: 5_000.0)
    counts: list[int] = []
    failures: list[BaseException] = []
    # Both replicas start their first batch together: without the advisory
    # lock both would fold the same records (or one would fail inserting the
    # same model's totals row).
    both_read = threading.Barrier(2, timeout=10)
    real_batch = MetricsRecorder._prune_batch

    started: set[int] = set()

    def prune_batch(self: MetricsRecorder, cutoff: float) -> int:
        if id(self) not in started:  # each replica's first batch starts with the other's
            started.add(id(self))
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait()
        return real_batch(self, cutoff)

    monkeypatch.setattr(MetricsRecorder, "_prune_batch", prune_batch)

    def run(recorder: MetricsRecorder) -> None:
        try:
            counts.append(recorder.prune())
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(counts) == 2
    assert sum(counts) == len(records)
    _same_totals(first.totals(), _sums(records))
    _same_totals(second.totals(), _sums(records))


def test_a_retention_of_zero_keeps_every_record(store_url: str) -> None:
    recorder = MetricsRecorder(Store(store_url), retention_seconds=0.0, clock=lambda: 1e9)
    for record in random_records("m", 10, seed=9):
        recorder.record(record)
    assert recorder.prune() == 0
    assert len(recorder.records("m")) == 10


def test_a_prune_between_the_count_and_the_percentile_read_is_survived(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(store_url)
    recorder = MetricsRecorder(store, retention_seconds=50.0, clock=lambda: 1_100.0)
    records = random_records("m", 100, seed=10)
    for record in records:
        recorder.record(record)
    recorder.flush()
    real_query = store.query
    pruned: list[int] = []

    def query(statement: Any) -> Any:
        rows = real_query(statement)
        if not pruned:  # right after the first read (the count): another replica prunes
            pruned.append(recorder.prune())
        return rows

    monkeypatch.setattr(store, "query", query)
    figures = recorder.metrics("m")  # raised IndexError: the rank's row was gone
    assert pruned and pruned[0] > 0
    kept = [r for r in records if r.started_at >= 1_050.0]
    assert figures.inference_count == len(kept)
    assert figures.p95_inference_time_ms == aggregate(kept).p95_inference_time_ms
