"""Poison jobs: a job that keeps crashing what runs it ends failed instead of looping.

The job service runs on a real store (SQLite, then PostgreSQL) with a handler
of its own kind; no model is needed to decide what happens to a crashing job.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from engine.errors import ModelCrashedError
from engine.events import EngineEvent
from services.events import StateEventBus
from services.jobs import JobRecord, JobService
from services.store import Store

OWNER = "key:owner"


def service(store_url: str, events: list[EngineEvent]) -> JobService:
    bus = StateEventBus()
    bus.subscribe(lambda event, tx: events.append(event))
    return JobService(Store(store_url), bus, concurrency=1, max_attempts=3)


async def finished(jobs: JobService, job_id: str) -> JobRecord:
    for _ in range(500):
        job = jobs.get(job_id, OWNER)
        if job.status in ("completed", "failed"):
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish")


async def test_a_job_whose_model_keeps_crashing_fails_after_its_attempts(store_url: str) -> None:
    events: list[EngineEvent] = []
    jobs = service(store_url, events)
    runs: list[int] = []

    async def crashing(payload: dict[str, Any], owner: str | None) -> dict[str, Any]:
        runs.append(1)
        raise ModelCrashedError("the model's runner died (signal 6)")

    jobs.register("poison", crashing)
    accepted = await jobs.submit("poison", {}, OWNER)
    job = await finished(jobs, accepted.id)
    await jobs.stop()
    assert len(runs) == 3
    assert job.status == "failed" and job.attempts == 3
    assert job.error is not None and job.error["code"] == "MODEL_CRASHED"
    assert job.error["details"]["attempts"] == 3
    completed = [e for e in events if e.type == "job_completed"]
    assert len(completed) == 1 and completed[0].data["status"] == "failed"


async def test_a_job_that_crashed_the_server_is_not_run_again_forever(store_url: str) -> None:
    """Rows left 'running' by processes that died: re-run until the attempts are spent."""
    events: list[EngineEvent] = []
    jobs = service(store_url, events)
    runs: list[str] = []

    async def handler(payload: dict[str, Any], owner: str | None) -> dict[str, Any]:
        runs.append(payload["name"])
        return {"ok": True}

    jobs.register("work", handler)
    store = Store(store_url)
    for name, attempts in (("spent", 3), ("retry", 1)):
        # What a process that died leaves behind: running, under a lease long expired.
        store.execute(
            store.tables.jobs.insert().values(
                id=f"job_{name}",
                kind="work",
                owner=OWNER,
                status="running",
                payload=json.dumps({"name": name}),
                attempts=attempts,
                created_at="2026-12-01T00:00:00Z",
                lease_owner="dead-replica",
                lease_until=1.0,
            )
        )
    store.close()
    await jobs.start()
    spent = await finished(jobs, "job_spent")
    retried = await finished(jobs, "job_retry")
    await jobs.stop()
    assert spent.status == "failed" and spent.error is not None
    assert spent.error["code"] == "MODEL_CRASHED"
    assert retried.status == "completed" and retried.attempts == 2
    assert runs == ["retry"]
    # One completion each (the two were created in the same second: no order between them).
    assert sorted(e.data["job_id"] for e in events if e.type == "job_completed") == [
        "job_retry",
        "job_spent",
    ]


async def test_a_graceful_stop_does_not_count_as_an_attempt(store_url: str) -> None:
    jobs = service(store_url, [])
    started = asyncio.Event()

    async def slow(payload: dict[str, Any], owner: str | None) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(60)
        return {}

    jobs.register("slow", slow)
    accepted = await jobs.submit("slow", {}, OWNER)
    await asyncio.wait_for(started.wait(), 10)
    await jobs.stop()
    job = jobs.get(accepted.id, OWNER)
    assert job.status == "queued" and job.attempts == 0
