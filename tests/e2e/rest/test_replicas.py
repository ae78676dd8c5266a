"""Two ``ai-ide serve`` replicas on one PostgreSQL and one Redis, as real processes.

- An async job accepted by replica A, running there, is finished by replica B
  after A is killed with SIGKILL (B claims it once A's lease has expired).
- Webhook events are delivered exactly once per event id in total, also while
  both replicas drain the one outbox.
- A rate limit is one quota for both replicas.

PostgreSQL and Redis are started by the test session on loopback
(tests/support/servers.py); the webhook receiver is a local HTTP server on
127.0.0.1, allow-listed in the replicas' settings. Every wait polls with a
generous deadline; nothing here asserts a duration.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from engine.config import load_settings
from services.store import Store
from tests.conftest import create_api_key
from tests.support.servers import PostgresServer, RedisServer, free_port
from tests.support.webhook_receiver import Receiver

BASE = "/v1/ai"
SECRET = "replica-secret-0123456789"
LEASE_SECONDS = 3.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as instance:
        yield instance


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Replica:
    """One ``ai-ide serve`` process."""

    name: str
    process: subprocess.Popen[bytes]
    base: str
    headers: dict[str, str]

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers=self.headers, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers=self.headers, timeout=30)


def write_config(tmp_path: Path, model: Path, store_url: str, redis_url: str) -> Path:
    config = tmp_path / "replica.toml"
    config.write_text(
        "\n".join(
            [
                # One machine: the replicas share the data directory, hence the
                # server secret that API-key digests are keyed with.
                f'data_dir = "{tmp_path / "data"}"',
                "preload = []",
                "[store]",
                f'url = "{store_url}"',
                "[rate_limits]",
                f'redis_url = "{redis_url}"',
                "batch_per_minute = 3",
                "[jobs]",
                f"lease_seconds = {LEASE_SECONDS}",
                "poll_interval_seconds = 0.2",
                "[inference]",
                "n_threads = 2",
                # No runner child: SIGSTOP and SIGKILL reach the whole replica.
                'isolation = "thread"',
                "request_timeout_seconds = 900",
                "[webhooks]",
                'allow_hosts = ["127.0.0.1"]',
                "timeout_seconds = 5.0",
                "backoff_base_seconds = 0.1",
                "backoff_max_seconds = 0.5",
                "poll_interval_seconds = 0.2",
                "max_attempts = 100",
                "[[models]]",
                'id = "tiny-deepseek"',
                'name = "tiny-deepseek"',
                f'path = "{model}"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config


def job_row(store: Store, job_id: str) -> dict[str, Any]:
    rows = store.query(select(store.tables.jobs).where(store.tables.jobs.c.id == job_id))
    return dict(rows[0])


def test_two_replicas_share_jobs_webhooks_and_limits(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    receiver: Receiver,
) -> None:
    store_url = postgres_server.create_database()
    config = write_config(tmp_path, tiny_models["tiny-deepseek"], store_url, redis_server.url())
    settings = load_settings(config)
    key = create_api_key(settings, "replicas")
    headers = {"X-API-Key": key}
    store = Store(store_url)
    processes: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(name: str) -> Replica:
        port = free_port()
        log = (tmp_path / f"{name}.log").open("wb")
        logs.append(log)
        command = [sys.executable, "-m", "lsp_server.cli", "serve", "--config", str(config)]
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=log
        )
        processes.append(process)
        replica = Replica(name, process, f"http://127.0.0.1:{port}{BASE}", headers)

        def healthy() -> bool:
            assert process.poll() is None, f"replica {name} exited; see {name}.log"
            with contextlib.suppress(httpx.HTTPError):
                return replica.get("/health").status_code == 200
            return False

        wait_for(healthy, f"replica {name} to answer /health")
        return replica

    try:
        a = start("a")
        hook = a.post(
            "/webhooks/ai-events",
            {"url": receiver.url, "events": ["job_completed", "model_loaded"], "secret": SECRET},
        )
        assert hook.status_code == 201, hook.text
        hook_id = hook.json()["id"]

        def all_delivered(replica: Replica) -> bool:
            log = replica.get(f"/webhooks/ai-events/{hook_id}/deliveries").json()["deliveries"]
            return bool(log) and all(d["status"] == "delivered" for d in log)

        # A's model_loaded is delivered before A dies: an attempt cut off after
        # sending is the one case where at-least-once delivery repeats an event.
        loaded = a.post("/models/tiny-deepseek/load", {})
        assert loaded.status_code in (200, 202), loaded.text
        wait_for(lambda: all_delivered(a), "A's model_loaded to be delivered")

        # -- a job accepted and started by A (the only replica yet) ------------------
        request = {
            "model_id": "tiny-deepseek",
            "context": {"language": "python", "code": "def h():\n    return "},
            "parameters": {"max_tokens": 1500},
            "options": {"async": True},
        }
        accepted = a.post("/inference/completion", request)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        wait_for(lambda: job_row(store, job_id)["status"] == "running", "A to start the job")
        os.kill(a.process.pid, signal.SIGSTOP)  # frozen: it can neither finish nor renew
        row = job_row(store, job_id)
        assert row["status"] == "running" and row["attempts"] == 1, row
        a_owner = row["lease_owner"]
        os.kill(a.process.pid, signal.SIGKILL)
        a.process.wait(30)
        b = start("b")

        # -- B takes the job over after A's lease expired, and finishes it ---------------
        def finished() -> bool:
            return job_row(store, job_id)["status"] in ("completed", "failed")

        wait_for(finished, "B to finish A's job", timeout=300)
        job = b.get(f"/jobs/{job_id}").json()
        assert job["status"] == "completed", job
        assert job["result"]["completion"]["metadata"]["completion_tokens"] > 0
        row = job_row(store, job_id)
        assert row["attempts"] == 2  # A's run, cut off, counted; B's run
        assert row["lease_owner"] is None and a_owner is not None

        # -- both replicas alive again: one rate limit, one outbox ----------------------
        a2 = start("a2")
        # 3 batch submissions a minute, counted in Redis for both replicas together.
        answers = [(r, r.post("/batch", {})) for r in (a2, b, a2, b)]
        assert all(resp.status_code != 429 for _, resp in answers[:3]), [
            resp.text for _, resp in answers
        ]
        remaining = [resp.headers["RateLimit"] for _, resp in answers[:3]]
        assert '"batch";r=2' in remaining[0] and '"batch";r=1' in remaining[1]
        assert '"batch";r=0' in remaining[2]
        refused = answers[3][1]
        assert refused.status_code == 429 and answers[3][0] is b
        details = refused.json()["error"]["details"]
        assert details["policy"] == "batch" and details["limit"] == 3
        assert refused.headers["Retry-After"] == str(details["retry_after_seconds"])

        short = {**request, "parameters": {"max_tokens": 4}}
        more = [
            (r.post("/inference/completion", short).json()["job_id"]) for r in (a2, b, a2, b, a2, b)
        ]
        wait_for(
            lambda: all(job_row(store, j)["status"] == "completed" for j in more),
            "the six short jobs",
            timeout=300,
        )
        wait_for(lambda: all_delivered(b), "every delivery")
        log = b.get(f"/webhooks/ai-events/{hook_id}/deliveries").json()["deliveries"]
        event_ids = {d["event_id"] for d in log}
        # Exactly once per event id, in total over all replicas.
        counts = Counter(delivery.webhook_id for delivery in receiver.seen())
        assert set(counts) == event_ids and set(counts.values()) == {1}, counts
        completed = [data["job_id"] for data in receiver.events("job_completed")]
        assert sorted(completed) == sorted([job_id, *more])
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        for log in logs:
            log.close()
        store.close()
