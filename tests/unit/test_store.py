"""The store under several claimers: jobs and deliveries leased once, leases that expire.

Every test runs on SQLite and on a real PostgreSQL server (tests/support/servers.py).
Several services on one store stand for several replicas: each has its own
lease owner id, exactly as two processes would.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.config import WebhookSettings
from engine.events import EngineEvent
from services.batch import BatchStore
from services.events import StateEventBus
from services.jobs import JobRecord, JobService
from services.keys import ApiKeyStore
from services.schema import SCHEMA_VERSION
from services.store import Store
from services.webhooks.outbox import Outbox
from services.webhooks.retry import RetryPolicy
from services.webhooks.subscriptions import SubscriptionStore

OWNER = "key:owner"


class FakeClock:
    """Wall-clock time the test moves by hand (leases are compared against it)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def job_service(
    store: Store, events: list[EngineEvent], clock: FakeClock | None = None, **kw: Any
) -> JobService:
    bus = StateEventBus()
    bus.subscribe(lambda event, tx: events.append(event))
    if clock is not None:
        kw["clock"] = clock
    return JobService(store, bus, concurrency=kw.pop("concurrency", 2), max_attempts=3, **kw)


def queue_jobs(store: Store, count: int) -> list[str]:
    ids = [f"job_{i:03d}" for i in range(count)]
    for job_id in ids:
        store.execute(
            store.tables.jobs.insert().values(
                id=job_id,
                kind="work",
                owner=OWNER,
                status="queued",
                payload=json.dumps({"id": job_id}),
                created_at="2026-12-01T00:00:00Z",
            )
        )
    return ids


async def test_two_replicas_run_every_job_exactly_once(store_url: str) -> None:
    replicas = [Store(store_url), Store(store_url)]
    events: list[EngineEvent] = []
    runs: list[tuple[int, str]] = []
    lock = threading.Lock()
    services = []
    for index, store in enumerate(replicas):

        async def handler(
            payload: dict[str, Any], owner: str | None, index: int = index
        ) -> dict[str, Any]:
            with lock:
                runs.append((index, payload["id"]))
            await asyncio.sleep(0.01)
            return {"by": index}

        service = job_service(store, events, poll_interval_seconds=0.05)
        service.register("work", handler)
        services.append(service)
    ids = queue_jobs(replicas[0], 40)
    for service in services:
        await service.start()
    for _ in range(2000):
        if len([e for e in events if e.type == "job_completed"]) >= len(ids):
            break
        await asyncio.sleep(0.01)
    for service in services:
        await service.stop()
    ran = Counter(job_id for _, job_id in runs)
    assert sorted(ran) == ids and set(ran.values()) == {1}, ran
    completed = Counter(e.data["job_id"] for e in events if e.type == "job_completed")
    assert completed == Counter(dict.fromkeys(ids, 1))
    for store in replicas:
        store.close()


def test_concurrent_claims_never_take_one_job_twice(store_url: str) -> None:
    """Eight threads over two stores claim at once: every job goes to one claimer."""
    stores = [Store(store_url), Store(store_url)]
    ids = queue_jobs(stores[0], 48)
    services = [job_service(stores[i % 2], []) for i in range(8)]
    for service in services:
        service.register("work", lambda payload, owner: asyncio.sleep(0, {}))
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(services))

    def claimer(service: JobService) -> None:
        start.wait()
        while (job := service.claim()) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claimer, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(claimed) == ids  # each exactly once: no duplicates, none left
    rows = stores[0].query(select(stores[0].tables.jobs))
    assert {r["status"] for r in rows} == {"running"}
    assert {r["lease_owner"] for r in rows} <= {s.lease_owner for s in services}
    for store in stores:
        store.close()


async def test_a_dead_replicas_job_is_taken_over_after_its_lease(store_url: str) -> None:
    clock = FakeClock()
    store_a, store_b = Store(store_url), Store(store_url)
    events: list[EngineEvent] = []
    dead = job_service(store_a, events, clock, lease_seconds=30.0)
    alive = job_service(store_b, events, clock, lease_seconds=30.0)
    for service in (dead, alive):
        service.register("work", lambda payload, owner: asyncio.sleep(0, {"ok": True}))
    (job_id,) = queue_jobs(store_a, 1)
    taken = await asyncio.to_thread(dead.claim)
    assert taken is not None and taken.id == job_id and taken.attempts == 1
    # "kill -9": the dead replica renews nothing from now on.
    assert await asyncio.to_thread(alive.claim) is None  # its lease still holds
    clock.now += 29.0
    assert await asyncio.to_thread(alive.claim) is None
    clock.now += 2.0
    again = await asyncio.to_thread(alive.claim)
    assert again is not None and again.id == job_id and again.attempts == 2
    # The dead replica's late result is not stored: the lease is not its own any more.
    await asyncio.to_thread(dead._finish, taken, "completed", {"by": "dead"}, None)
    assert events == []
    await asyncio.to_thread(alive._finish, again, "completed", {"by": "alive"}, None)
    job = alive.get(job_id, OWNER)
    assert job.status == "completed" and job.result == {"by": "alive"}
    assert [e.data["job_id"] for e in events] == [job_id]
    store_a.close()
    store_b.close()


async def test_renewed_leases_are_not_taken_over(store_url: str) -> None:
    clock = FakeClock()
    store = Store(store_url)
    holder = job_service(store, [], clock, lease_seconds=30.0)
    other = job_service(store, [], clock, lease_seconds=30.0)
    for service in (holder, other):
        service.register("work", lambda payload, owner: asyncio.sleep(0, {}))
    queue_jobs(store, 1)
    assert await asyncio.to_thread(holder.claim) is not None
    for _ in range(5):
        clock.now += 20.0
        assert await asyncio.to_thread(holder.renew) == 1
        assert await asyncio.to_thread(other.claim) is None
    store.close()


async def test_a_job_whose_replicas_keep_dying_fails_after_max_attempts(store_url: str) -> None:
    clock = FakeClock()
    store = Store(store_url)
    events: list[EngineEvent] = []
    (job_id,) = queue_jobs(store, 1)
    for attempt in range(1, 4):
        replica = job_service(store, events, clock, lease_seconds=10.0)
        replica.register("work", lambda payload, owner: asyncio.sleep(0, {}))
        job: JobRecord | None = await asyncio.to_thread(replica.claim)
        assert job is not None and job.attempts == attempt
        clock.now += 11.0  # and it dies
    last = job_service(store, events, clock, lease_seconds=10.0)
    last.register("work", lambda payload, owner: asyncio.sleep(0, {}))
    assert await asyncio.to_thread(last.claim) is None
    job = last.get(job_id, OWNER)
    assert job.status == "failed" and job.error is not None
    assert job.error["code"] == "MODEL_CRASHED" and job.attempts == 3
    assert [e.data["status"] for e in events] == ["failed"]
    store.close()


def outbox(store: Store, subscriptions: SubscriptionStore) -> Outbox:
    return Outbox(
        store,
        subscriptions,
        RetryPolicy.from_settings(WebhookSettings()),
        clock=lambda: 2_000_000_000.0,
        lease_seconds=30.0,
        rng=random.Random(1),
    )


def test_concurrent_outbox_claims_lease_each_delivery_once(store_url: str) -> None:
    stores = [Store(store_url), Store(store_url)]
    subscriptions = [SubscriptionStore(s, 100) for s in stores]
    hook = subscriptions[0].create(OWNER, "http://127.0.0.1:9/", ["model_loaded"], "s" * 16)
    boxes = [outbox(stores[i % 2], subscriptions[i % 2]) for i in range(6)]
    events = [EngineEvent("model_loaded", {"model_id": f"m{i}"}) for i in range(60)]
    with stores[0].transaction() as tx:
        for event in events:
            assert boxes[0].write(tx, event, [hook.id]) == 1
        # Writing an event again adds nothing.
        assert boxes[0].write(tx, events[0], [hook.id]) == 0
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(boxes))

    def claimer(box: Outbox) -> None:
        start.wait()
        while batch := box.claim(4):
            with lock:
                claimed.extend(c.event_id for c in batch)

    threads = [threading.Thread(target=claimer, args=(b,)) for b in boxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(claimed) == sorted(e.id for e in events)
    for store in stores:
        store.close()


def test_keys_and_subscriptions_keep_creation_order(store_url: str) -> None:
    store = Store(store_url)
    keys = ApiKeyStore(store, b"k" * 32)
    names = [f"key-{i}" for i in range(5)]
    created = [keys.create(name) for name in names]
    assert [k.name for k in keys.list_keys()] == names  # same second: seq orders them
    assert keys.verify(created[2].key).key_id == created[2].info.id
    subscriptions = SubscriptionStore(store, 100)
    made = [
        subscriptions.create(OWNER, f"http://127.0.0.1:9/{i}", ["model_loaded"], "s" * 16)
        for i in range(5)
    ]
    listed, total = subscriptions.list(OWNER)
    assert total == 5 and [s.id for s in listed] == [s.id for s in made]
    store.close()


# The tables exactly as the SQLite-only version created them (schema version 0).
_VERSION_0 = (
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT,"
    " status TEXT NOT NULL, payload TEXT NOT NULL, result TEXT, error TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, started_at TEXT,"
    " finished_at TEXT)",
    "CREATE INDEX jobs_status ON jobs (status)",
    "CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL,"
    " created_at TEXT NOT NULL, last_used_at TEXT, revoked_at TEXT)",
    "INSERT INTO api_keys VALUES ('b', 'second', 'x', '2026-01-01T00:00:00Z', NULL, NULL)",
    "INSERT INTO api_keys VALUES ('a', 'third', 'x', '2026-01-01T00:00:00Z', NULL, NULL)",
    "INSERT INTO api_keys VALUES ('c', 'first', 'x', '2025-01-01T00:00:00Z', NULL, NULL)",
    "INSERT INTO jobs (id, kind, owner, status, payload, created_at)"
    " VALUES ('job_old', 'work', 'key:owner', 'queued', '{}', '2026-01-01T00:00:00Z')",
    "CREATE TABLE batches (id TEXT PRIMARY KEY, owner TEXT, status TEXT NOT NULL,"
    " background INTEGER NOT NULL, response TEXT, created_at TEXT NOT NULL, finished_at TEXT)",
    "INSERT INTO batches (id, owner, status, background, created_at)"
    " VALUES ('batch_old', 'key:owner', 'running', 0, '2026-01-01T00:00:00Z')",
)


def test_an_old_sqlite_file_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in _VERSION_0:
            db.execute(statement)
    store = Store(path)
    names = [k.name for k in ApiKeyStore(store, b"k" * 32).list_keys()]
    assert names == ["first", "second", "third"]  # insertion order kept within a second
    service = job_service(store, [])
    service.register("work", lambda payload, owner: asyncio.sleep(0, {}))
    job = service.claim()
    assert job is not None and job.id == "job_old" and job.attempts == 1
    # The old process died with its synchronous batch: failed at this start.
    assert BatchStore(store, StateEventBus()).fail_interrupted() == 1
    assert BatchStore(store, StateEventBus()).get("batch_old", OWNER)[0] == "failed"
    version = store.query(select(store.tables.schema_version.c.version))
    assert [r["version"] for r in version] == [SCHEMA_VERSION]
    store.close()
    Store(path).close()  # opening again changes nothing and does not fail


def test_a_dead_replicas_synchronous_batch_fails_after_its_lease(store_url: str) -> None:
    clock = FakeClock()
    store = Store(store_url)
    dead = BatchStore(store, StateEventBus(), lease_seconds=30.0, clock=clock)
    alive = BatchStore(store, StateEventBus(), lease_seconds=30.0, clock=clock)
    cut_off = dead.create(OWNER, background=False)
    running = alive.create(OWNER, background=False)
    queued_as_job = dead.create(OWNER, background=True)
    if store.shared:
        # Replicas: a running batch may be another live replica's; only an
        # expired lease says that its replica died.
        assert alive.fail_interrupted() == 0
        clock.now += 20.0
        assert alive.renew() == 1
        clock.now += 20.0  # the dead replica's lease has run out, the live one's not
        assert alive.fail_interrupted() == 1
        assert alive.get(running, OWNER)[0] == "running"
    else:
        # One process: whatever is running at start was cut off by the last one.
        assert alive.fail_interrupted() == 2
    assert alive.get(cut_off, OWNER)[0] == "failed"
    assert alive.get(queued_as_job, OWNER)[0] == "running"  # a job: it runs again
    store.close()
