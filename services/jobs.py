"""Asynchronous jobs that survive restarts.

A job is a stored request (kind + JSON payload) owned by a caller. Workers
run it through the handler registered for its kind and store the result (or
the error) with the ``job_completed`` event in one transaction. Jobs that
were queued or running when the process stopped run again at the next start.

A job that keeps crashing what runs it (a model whose runner aborts, or the
whole process) is a poison job: every run counts as an attempt, and after
``max_attempts`` it ends ``failed`` with the reason instead of running again,
so a restart cannot turn it into a crash loop. A graceful stop does not count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import EngineError, ModelCrashedError, NotFoundError
from engine.events import EngineEvent, utc_timestamp
from services.events import StateEventBus
from services.store import Store

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "completed", "failed"]
JobHandler = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT,
        status TEXT NOT NULL,
        payload TEXT NOT NULL,
        result TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status)",
)


@dataclass(frozen=True)
class JobRecord:
    """A job as stored."""

    id: str
    kind: str
    owner: str | None
    status: JobStatus
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None


def _record(row: Any) -> JobRecord:
    return JobRecord(
        id=row["id"],
        kind=row["kind"],
        owner=row["owner"],
        status=row["status"],
        payload=json.loads(row["payload"]),
        result=json.loads(row["result"]) if row["result"] else None,
        error=json.loads(row["error"]) if row["error"] else None,
        attempts=row["attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def error_body(exc: EngineError) -> dict[str, Any]:
    """The stored form of a failure: the envelope's error object without request data."""
    return {"code": exc.code, "message": exc.message, "details": exc.details}


class JobService:
    """Stores jobs in SQLite and runs them on a few asyncio workers."""

    def __init__(
        self, store: Store, bus: StateEventBus, concurrency: int = 4, max_attempts: int = 3
    ) -> None:
        self._store = store
        self._bus = bus
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._handlers: dict[str, JobHandler] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._workers: list[asyncio.Task[None]] = []
        store.ensure_schema("jobs", _SCHEMA)

    def register(self, kind: str, handler: JobHandler) -> None:
        """Say how jobs of ``kind`` run (the REST layer registers its request kinds)."""
        self._handlers[kind] = handler

    @property
    def running(self) -> bool:
        """True once the workers are started."""
        return bool(self._workers)

    async def start(self) -> None:
        """Start the workers and re-queue jobs interrupted by the last shutdown."""
        if self._workers:
            return
        self._queue = asyncio.Queue()
        # A job still 'running' was interrupted by a process that died. It runs
        # again (results are only stored on completion, so that is safe)
        # unless it has used up its attempts: then it may be what killed it.
        for row in self._store.query("SELECT * FROM jobs WHERE status = 'running'"):
            job = _record(row)
            if job.attempts >= self._max_attempts:
                crash = ModelCrashedError(
                    f"the job was interrupted {job.attempts} times by a crash of the server "
                    "or of its model; it is not run again",
                    {"attempts": job.attempts},
                )
                self._finish(job, "failed", None, error_body(crash))
        with self._store.transaction() as tx:
            tx.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'")
        for row in self._store.query(
            "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at"
        ):
            self._queue.put_nowait(row["id"])
        self._workers = [
            asyncio.create_task(self._work(), name=f"job-worker-{i}")
            for i in range(self._concurrency)
        ]

    async def stop(self) -> None:
        """Stop the workers; unfinished jobs stay stored and run at the next start."""
        loop = asyncio.get_running_loop()
        for task in self._workers:
            # Workers started on another loop (a test client's) die with it.
            with contextlib.suppress(RuntimeError):
                task.cancel()
        for task in self._workers:
            if task.get_loop() is loop:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._workers = []
        self._queue = None

    async def submit(self, kind: str, payload: dict[str, Any], owner: str | None) -> JobRecord:
        """Store a new job and queue it; returns at once."""
        if kind not in self._handlers:
            raise EngineError(f"no handler for job kind {kind!r}")
        await self.start()
        job_id = f"job_{uuid.uuid4().hex}"
        now = utc_timestamp()
        self._store.execute(
            "INSERT INTO jobs (id, kind, owner, status, payload, created_at) "
            "VALUES (?, ?, ?, 'queued', ?, ?)",
            (job_id, kind, owner, json.dumps(payload), now),
        )
        assert self._queue is not None
        self._queue.put_nowait(job_id)
        return self.get(job_id, owner)

    def get(self, job_id: str, owner: str | None) -> JobRecord:
        """A job of this owner; someone else's job is simply not found."""
        rows = self._store.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows or rows[0]["owner"] != owner:
            raise NotFoundError(f"job '{job_id}' not found", {"job_id": job_id})
        return _record(rows[0])

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            job_id = await queue.get()
            try:
                await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s crashed", job_id)

    async def _run(self, job_id: str) -> None:
        rows = self._store.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows or rows[0]["status"] != "queued":
            return
        job = _record(rows[0])
        handler = self._handlers.get(job.kind)
        if handler is None:
            return  # stays queued until a process that can run it starts
        self._store.execute(
            "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1 "
            "WHERE id = ?",
            (utc_timestamp(), job_id),
        )
        attempts = job.attempts + 1
        try:
            result = await handler(job.payload, job.owner)
        except ModelCrashedError as exc:
            if attempts < self._max_attempts:
                log.warning("job %s: its model crashed (attempt %d); retrying", job_id, attempts)
                self._requeue(job_id, uncount=False)
                return
            details = {**exc.details, "attempts": attempts}
            self._finish(job, "failed", None, error_body(ModelCrashedError(exc.message, details)))
        except EngineError as exc:
            self._finish(job, "failed", None, error_body(exc))
        except asyncio.CancelledError:
            # Shutting down: not the job's fault, so the run does not count.
            with contextlib.suppress(Exception):
                self._requeue(job_id, uncount=True)
            raise
        except Exception as exc:
            log.exception("job %s failed", job_id)
            failure = EngineError(f"job failed: {type(exc).__name__}")
            self._finish(job, "failed", None, error_body(failure))
        else:
            self._finish(job, "completed", result, None)

    def _requeue(self, job_id: str, *, uncount: bool) -> None:
        self._store.execute(
            "UPDATE jobs SET status = 'queued', attempts = attempts - ? WHERE id = ?",
            (1 if uncount else 0, job_id),
        )
        if not uncount and self._queue is not None:
            self._queue.put_nowait(job_id)

    def _finish(
        self,
        job: JobRecord,
        status: JobStatus,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> None:
        finished = utc_timestamp()
        with self._store.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?",
                (
                    status,
                    json.dumps(result) if result is not None else None,
                    json.dumps(error) if error is not None else None,
                    finished,
                    job.id,
                ),
            )
            self._bus.publish(
                EngineEvent(
                    "job_completed",
                    {"job_id": job.id, "type": job.kind, "status": status, "error": error},
                    owner=job.owner,
                ),
                tx,
            )
