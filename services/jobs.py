"""Asynchronous jobs that survive restarts, run by any replica over one store.

A job is a stored request (kind + JSON payload) owned by a caller. Workers
claim queued jobs from the table, run each through the handler registered for
its kind and store the result (or the error) with the ``job_completed`` event
in one transaction.

Claims are leases: a claimed job is ``running`` with ``lease_owner`` (this
service's random id) and ``lease_until``, renewed every third of
``jobs.lease_seconds`` while it runs. On PostgreSQL the claim reads with
``FOR UPDATE SKIP LOCKED``, so replicas polling together never take the same
job; on SQLite one writer at a time gives the same. A replica that dies
(``kill -9``) stops renewing: once its lease has expired another replica
claims the job again, and that interrupted run counts as an attempt. A
graceful stop gives its jobs back at once, uncounted. Results are only stored
by the lease holder, so a job whose lease was lost completes only once.

A job that keeps crashing what runs it (a model whose runner aborts, or the
whole process) is a poison job: every run counts as an attempt, and after
``max_attempts`` it ends ``failed`` with the reason instead of running again,
so a restart cannot turn it into a crash loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import Connection, and_, or_, select, update

from engine.errors import EngineError, ModelCrashedError, NotFoundError
from engine.events import EngineEvent, utc_timestamp
from services.events import StateEventBus
from services.store import Store

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "completed", "failed"]
JobHandler = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]


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
    """Stores jobs and runs them on a few asyncio workers, claiming them by lease."""

    def __init__(
        self,
        store: Store,
        bus: StateEventBus,
        concurrency: int = 4,
        max_attempts: int = 3,
        *,
        lease_seconds: float = 30.0,
        poll_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._jobs = store.tables.jobs
        self._bus = bus
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_interval_seconds
        # Wall-clock time: leases are compared across replicas (and restarts).
        self._clock = clock
        # Names this service in lease_owner; a restart is a new holder.
        self._owner = uuid.uuid4().hex
        self._handlers: dict[str, JobHandler] = {}
        self._wake: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []

    @property
    def lease_owner(self) -> str:
        """The id this service writes into the leases it holds."""
        return self._owner

    def register(self, kind: str, handler: JobHandler) -> None:
        """Say how jobs of ``kind`` run (the REST layer registers its request kinds)."""
        self._handlers[kind] = handler

    @property
    def running(self) -> bool:
        """True once the workers are started."""
        return bool(self._workers)

    async def start(self) -> None:
        """Start the workers (and the lease renewal); stored jobs are claimed as they come."""
        if self._workers:
            return
        self._wake = asyncio.Event()
        self._workers = [
            asyncio.create_task(self._work(), name=f"job-worker-{i}")
            for i in range(self._concurrency)
        ]
        self._workers.append(asyncio.create_task(self._renew_leases(), name="job-leases"))

    async def stop(self) -> None:
        """Stop the workers; unfinished jobs are given back and run at the next start."""
        loop = asyncio.get_running_loop()
        for task in self._workers:
            # Workers started on another loop (a test client's) die with it.
            with contextlib.suppress(RuntimeError):
                task.cancel()
        for task in self._workers:
            if task.get_loop() is loop:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        had_workers = bool(self._workers)
        self._workers = []
        self._wake = None
        if had_workers:
            # Whatever is still leased to us (a worker cut off on a dead loop)
            # goes back at once, uncounted: stopping is not the job's fault.
            await asyncio.to_thread(self._release_all)

    async def submit(self, kind: str, payload: dict[str, Any], owner: str | None) -> JobRecord:
        """Store a new job and wake a worker; returns at once."""
        if kind not in self._handlers:
            raise EngineError(f"no handler for job kind {kind!r}")
        await self.start()
        job = JobRecord(
            id=f"job_{uuid.uuid4().hex}",
            kind=kind,
            owner=owner,
            status="queued",
            payload=payload,
            result=None,
            error=None,
            attempts=0,
            created_at=utc_timestamp(),
            started_at=None,
            finished_at=None,
        )
        await asyncio.to_thread(
            self._store.execute,
            self._jobs.insert().values(
                id=job.id,
                kind=kind,
                owner=owner,
                status="queued",
                payload=json.dumps(payload),
                created_at=job.created_at,
            ),
        )
        if self._wake is not None:
            self._wake.set()
        # As accepted: a worker (here or on another replica) may have claimed it already.
        return job

    def get(self, job_id: str, owner: str | None) -> JobRecord:
        """A job of this owner; someone else's job is simply not found."""
        rows = self._store.query(select(self._jobs).where(self._jobs.c.id == job_id))
        if not rows or rows[0]["owner"] != owner:
            raise NotFoundError(f"job '{job_id}' not found", {"job_id": job_id})
        return _record(rows[0])

    # -- claiming --------------------------------------------------------------------

    def claim(self) -> JobRecord | None:
        """Lease the oldest runnable job to this service; None when there is none.

        Runnable: queued, or running under a lease that expired (its replica
        died). An expired run counts as an attempt; a job whose attempts are
        spent ends failed here instead of running again.
        """
        while True:
            now = self._clock()
            jobs = self._jobs
            with self._store.transaction() as tx:
                row = (
                    tx.execute(
                        select(jobs)
                        .where(
                            jobs.c.kind.in_(list(self._handlers)),
                            or_(
                                jobs.c.status == "queued",
                                and_(jobs.c.status == "running", jobs.c.lease_until < now),
                            ),
                        )
                        .order_by(jobs.c.created_at, jobs.c.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    return None
                job = _record(row)
                if job.status == "running" and job.attempts >= self._max_attempts:
                    crash = ModelCrashedError(
                        f"the job was interrupted {job.attempts} times by a crash of the "
                        "server or of its model; it is not run again",
                        {"attempts": job.attempts},
                    )
                    self._finish_in(tx, job, "failed", None, error_body(crash), owned=False)
                    continue  # look for the next one
                if job.status == "running":
                    log.warning(
                        "job %s: its lease expired (holder %s died?); running it again",
                        job.id,
                        row["lease_owner"],
                    )
                started = utc_timestamp()
                tx.execute(
                    update(jobs)
                    .where(jobs.c.id == job.id)
                    .values(
                        status="running",
                        started_at=started,
                        attempts=jobs.c.attempts + 1,
                        lease_owner=self._owner,
                        lease_until=now + self._lease_seconds,
                    )
                )
            return replace(job, status="running", started_at=started, attempts=job.attempts + 1)

    def renew(self) -> int:
        """Extend the leases of every job this service runs; returns how many."""
        jobs = self._jobs
        return self._store.execute(
            update(jobs)
            .where(jobs.c.lease_owner == self._owner, jobs.c.status == "running")
            .values(lease_until=self._clock() + self._lease_seconds)
        )

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await asyncio.to_thread(self.renew)
            except Exception:
                # Retried at the next beat; a lease lost meanwhile means
                # another replica runs the job, and only its result is kept.
                log.exception("renewing job leases failed")

    # -- running ---------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            wake = self._wake
            if wake is not None:
                wake.clear()
            job = await self._claim_safely()
            if job is None:
                if wake is not None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._poll_seconds):
                            await wake.wait()
                else:
                    await asyncio.sleep(self._poll_seconds)
                continue
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s crashed", job.id)

    async def _claim_safely(self) -> JobRecord | None:
        claiming = asyncio.ensure_future(asyncio.to_thread(self.claim))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # The claim runs on in its thread: give back what it took.
            with contextlib.suppress(Exception):
                job = await claiming
                if job is not None:
                    self._release(job.id, uncount=True)
            raise
        except Exception:
            log.exception("claiming a job failed")
            return None

    async def _run(self, job: JobRecord) -> None:
        handler = self._handlers[job.kind]
        try:
            result = await handler(job.payload, job.owner)
        except ModelCrashedError as exc:
            if job.attempts < self._max_attempts:
                log.warning(
                    "job %s: its model crashed (attempt %d); retrying", job.id, job.attempts
                )
                await asyncio.to_thread(self._release, job.id, uncount=False)
                if self._wake is not None:
                    self._wake.set()
                return
            details = {**exc.details, "attempts": job.attempts}
            failure = error_body(ModelCrashedError(exc.message, details))
            await asyncio.to_thread(self._finish, job, "failed", None, failure)
        except EngineError as exc:
            await asyncio.to_thread(self._finish, job, "failed", None, error_body(exc))
        except asyncio.CancelledError:
            # Shutting down: not the job's fault, so the run does not count.
            with contextlib.suppress(Exception):
                self._release(job.id, uncount=True)
            raise
        except Exception as exc:
            log.exception("job %s failed", job.id)
            failure = error_body(EngineError(f"job failed: {type(exc).__name__}"))
            await asyncio.to_thread(self._finish, job, "failed", None, failure)
        else:
            await asyncio.to_thread(self._finish, job, "completed", result, None)

    def _release(self, job_id: str, *, uncount: bool) -> None:
        jobs = self._jobs
        self._store.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.lease_owner == self._owner)
            .values(
                status="queued",
                attempts=jobs.c.attempts - (1 if uncount else 0),
                lease_owner=None,
                lease_until=0.0,
            )
        )

    def _release_all(self) -> None:
        jobs = self._jobs
        self._store.execute(
            update(jobs)
            .where(jobs.c.lease_owner == self._owner, jobs.c.status == "running")
            .values(
                status="queued",
                attempts=jobs.c.attempts - 1,
                lease_owner=None,
                lease_until=0.0,
            )
        )

    def _finish(
        self,
        job: JobRecord,
        status: JobStatus,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> None:
        with self._store.transaction() as tx:
            self._finish_in(tx, job, status, result, error, owned=True)

    def _finish_in(
        self,
        tx: Connection,
        job: JobRecord,
        status: JobStatus,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
        *,
        owned: bool,
    ) -> None:
        jobs = self._jobs
        condition = [jobs.c.id == job.id]
        if owned:
            # Only the lease holder stores a result: after a lost lease the
            # replica that took the job over completes it, once.
            condition.append(jobs.c.lease_owner == self._owner)
        changed = tx.execute(
            update(jobs)
            .where(*condition)
            .values(
                status=status,
                result=json.dumps(result) if result is not None else None,
                error=json.dumps(error) if error is not None else None,
                finished_at=utc_timestamp(),
                lease_owner=None,
                lease_until=0.0,
            )
        ).rowcount
        if not changed:
            log.warning("job %s: lease lost to another replica; its result is not stored", job.id)
            return
        self._bus.publish(
            EngineEvent(
                "job_completed",
                {"job_id": job.id, "type": job.kind, "status": status, "error": error},
                owner=job.owner,
            ),
            tx,
        )
