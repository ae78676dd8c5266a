"""Webhooks that never lose an event: subscriptions, an outbox and a delivery worker.

- **Subscriptions** belong to a caller (``owner``); every read and change is
  scoped to that owner, so another caller's subscription simply does not exist.
- **Outbox**: the service is a sink of the engine's event bus and of the
  services' :class:`~services.events.StateEventBus`. For each
  event it writes one ``webhook_deliveries`` row per matching active
  subscription, inside the publisher's transaction when there is one (so the
  event commits, or rolls back, with the state change that caused it). An
  event with an ``owner`` goes only to that owner's subscriptions; a model
  event (no owner) goes to every subscriber of its type; a request event
  without an owner (the editor's, over LSP) goes to nobody.
- **Delivery**: an asyncio task claims due rows with a lease (so two processes
  on one data directory, or a restart, never lose or double-claim a row) and
  sends each on its own task, a bounded number at a time. Every attempt is
  bounded in time and in bytes read; failures are retried with exponential
  backoff and full jitter (or the receiver's ``Retry-After``). Rows stay in
  SQLite until delivered or failed, so a restart or ``kill -9`` resumes them:
  delivery is at least once, always under the same event id.

Payload and signatures (see README "Webhooks"): the body is
``{"event_type", "timestamp", "data", "signature"}`` where ``signature`` is
``sha256=`` + hex HMAC-SHA256 over the canonical JSON of the other three
fields; Standard Webhooks headers ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 over
``{id}.{timestamp}.{body}``) let receivers reject replays.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from engine.config import WebhookSettings
from engine.errors import InvalidRequestError, NotFoundError
from engine.events import EVENT_TYPES, EngineEvent, EventBus, utc_timestamp
from services.events import StateEventBus
from services.store import Store
from services.webhooks.url_guard import UrlGuard, UrlRefusedError, WebhookTarget

log = logging.getLogger(__name__)

DeliveryStatus = Literal["pending", "delivered", "failed"]

MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 512
USER_AGENT = "ai-ide-webhooks/1"
# Events about one request. Without an owner they came from the editor (LSP)
# face, which has no API caller: they carry the user's code, so they go to
# nobody rather than to every subscriber.
CALLER_SCOPED_EVENTS = frozenset(
    {"inference_completed", "error_occurred", "job_completed", "batch_completed"}
)
_MAX_ERROR_CHARS = 300
_PRUNE_EVERY_SECONDS = 3600.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS webhook_subscriptions (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        disabled_reason TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS webhook_subscriptions_owner ON webhook_subscriptions (owner)",
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
        id TEXT PRIMARY KEY,
        subscription_id TEXT NOT NULL
            REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        event_timestamp TEXT NOT NULL,
        data TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_status_code INTEGER,
        last_error TEXT,
        next_attempt_at REAL NOT NULL,
        lease_until REAL NOT NULL DEFAULT 0,
        lease_owner TEXT,
        created_at REAL NOT NULL,
        delivered_at REAL,
        finished_at REAL,
        UNIQUE (subscription_id, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due"
    " ON webhook_deliveries (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_subscription"
    " ON webhook_deliveries (subscription_id, created_at)",
)


# -- payload and signatures ------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes the payload signature covers."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def payload_signature(secret: str, event_type: str, timestamp: str, data: Any) -> str:
    """The body's ``signature`` field: ``sha256=`` + hex HMAC over the other fields."""
    message = canonical_json({"event_type": event_type, "timestamp": timestamp, "data": data})
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def build_body(secret: str, event_type: str, timestamp: str, data: Any) -> bytes:
    """The exact request body of a delivery (the same bytes on every attempt)."""
    return canonical_json(
        {
            "event_type": event_type,
            "timestamp": timestamp,
            "data": data,
            "signature": payload_signature(secret, event_type, timestamp, data),
        }
    )


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header (Standard Webhooks ``v1``).

    The key is the secret's UTF-8 bytes; Standard Webhooks libraries expect
    ``whsec_`` + base64 of the key, i.e. ``"whsec_" + b64encode(secret)``.
    """
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a delay, or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(n-1))].

    Full jitter spreads retries of many deliveries that failed together (a
    receiver that came back up) instead of sending them in synchronized waves.
    """
    ceiling = min(cap, base * 2.0 ** max(0, min(attempts - 1, 62)))
    return rng.uniform(0.0, ceiling)


def _rfc3339(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- records ---------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription as the API shows it (never with its secret)."""

    id: str
    owner: str
    url: str
    events: tuple[str, ...]
    created_at: str
    active: bool
    disabled_reason: str | None


@dataclass(frozen=True)
class Delivery:
    """One event for one subscription, with the state of its attempts."""

    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None  # RFC 3339; None unless pending
    delivered_at: str | None
    created_at: str


@dataclass(frozen=True)
class _Claimed:
    """A delivery leased to this process for one attempt."""

    id: str
    subscription_id: str
    event_id: str
    url: str
    secret: str
    body: bytes


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        id=row["id"],
        owner=row["owner"],
        url=row["url"],
        events=tuple(json.loads(row["events"])),
        created_at=row["created_at"],
        active=bool(row["active"]),
        disabled_reason=row["disabled_reason"],
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    status: DeliveryStatus = row["status"]
    return Delivery(
        id=row["id"],
        subscription_id=row["subscription_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        status=status,
        attempts=row["attempts"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        next_attempt_at=_rfc3339(row["next_attempt_at"]) if status == "pending" else None,
        delivered_at=_rfc3339(row["delivered_at"]),
        created_at=_rfc3339(row["created_at"]) or "",
    )


def _plain_json(value: Any) -> Any:
    """``value`` with only JSON types: non-finite floats become None, others strings."""
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


# -- the service -------------------------------------------------------------------


class WebhookService:
    """Webhook subscriptions, the delivery outbox and the worker that drains it."""

    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        bus: EventBus[EngineEvent],
        state_events: StateEventBus,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self.guard = UrlGuard(settings.allow_hosts, resolve_timeout=settings.timeout_seconds)
        # Leases name their holder, so rows of a process that died are only
        # taken over once its lease has expired.
        self._lease_owner = uuid.uuid4().hex
        # An attempt ends within timeout_seconds; the margin covers recording it.
        self._lease_seconds = settings.timeout_seconds * 1.5 + 2.0
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        store.ensure_schema("webhooks", _SCHEMA)
        bus.subscribe(self._on_engine_event)
        state_events.subscribe(self._on_state_event)

    # -- subscriptions ---------------------------------------------------------------

    async def create(
        self, owner: str, url: str, events: Sequence[str], secret: str
    ) -> Subscription:
        """Register a subscription after checking its URL (INVALID_REQUEST naming the field)."""
        chosen = list(dict.fromkeys(events))
        if not chosen:
            raise InvalidRequestError("events", "events must name at least one event type")
        unknown = [e for e in chosen if e not in EVENT_TYPES]
        if unknown:
            raise InvalidRequestError(
                "events",
                f"Unknown event type '{unknown[0]}'",
                allowed=list(EVENT_TYPES),
            )
        if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
            raise InvalidRequestError(
                "secret",
                f"secret must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters long",
            )
        try:
            await self.guard.check(url)
        except UrlRefusedError as exc:
            raise InvalidRequestError("url", f"Webhook URL refused: {exc}") from None
        subscription = Subscription(
            id=f"wh_{uuid.uuid4().hex}",
            owner=owner,
            url=url,
            events=tuple(chosen),
            created_at=utc_timestamp(),
            active=True,
            disabled_reason=None,
        )
        limit = self._settings.max_subscriptions_per_caller
        with self._store.transaction() as tx:
            (count,) = tx.execute(
                "SELECT COUNT(*) FROM webhook_subscriptions WHERE owner = ?", (owner,)
            ).fetchone()
            if count >= limit:
                raise InvalidRequestError(
                    "webhooks",
                    f"A caller may have at most {limit} webhook subscriptions; delete one first",
                    limit=limit,
                )
            tx.execute(
                "INSERT INTO webhook_subscriptions (id, owner, url, events, secret, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    subscription.id,
                    owner,
                    url,
                    json.dumps(list(subscription.events)),
                    secret,
                    subscription.created_at,
                ),
            )
        return subscription

    def subscriptions(
        self, owner: str, limit: int = 100, offset: int = 0
    ) -> tuple[list[Subscription], int]:
        """The owner's subscriptions (oldest first) and their total count."""
        rows = self._store.query(
            "SELECT * FROM webhook_subscriptions WHERE owner = ?"
            " ORDER BY created_at, rowid LIMIT ? OFFSET ?",
            (owner, limit, offset),
        )
        (total,) = self._store.query(
            "SELECT COUNT(*) FROM webhook_subscriptions WHERE owner = ?", (owner,)
        )[0]
        return [_subscription(r) for r in rows], int(total)

    def get(self, owner: str, subscription_id: str) -> Subscription:
        """One of the owner's subscriptions; NOT_FOUND for anyone else's."""
        rows = self._store.query(
            "SELECT * FROM webhook_subscriptions WHERE id = ? AND owner = ?",
            (subscription_id, owner),
        )
        if not rows:
            raise self._not_found(subscription_id)
        return _subscription(rows[0])

    def delete(self, owner: str, subscription_id: str) -> None:
        """Delete a subscription and its delivery log (pending deliveries are dropped)."""
        with self._store.transaction() as tx:
            deleted = tx.execute(
                "DELETE FROM webhook_subscriptions WHERE id = ? AND owner = ?",
                (subscription_id, owner),
            ).rowcount
        if not deleted:
            raise self._not_found(subscription_id)

    def deliveries(
        self,
        owner: str,
        subscription_id: str,
        limit: int = 100,
        offset: int = 0,
        status: DeliveryStatus | None = None,
    ) -> tuple[list[Delivery], int]:
        """A subscription's delivery log, newest first, and its total count."""
        self.get(owner, subscription_id)
        where = "subscription_id = ?"
        params: list[Any] = [subscription_id]
        if status is not None:
            where += " AND status = ?"
            params.append(status)
        rows = self._store.query(
            f"SELECT * FROM webhook_deliveries WHERE {where}"
            " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        (total,) = self._store.query(
            f"SELECT COUNT(*) FROM webhook_deliveries WHERE {where}", params
        )[0]
        return [_delivery(r) for r in rows], int(total)

    def redeliver(self, owner: str, subscription_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again, as soon as possible, under the same event id.

        Asking for a redelivery says the receiver is ready, so a subscription
        that was disabled (410 Gone, repeated failures) is enabled again.
        """
        now = self._clock()
        with self._store.transaction() as tx:
            owned = tx.execute(
                "SELECT 1 FROM webhook_subscriptions WHERE id = ? AND owner = ?",
                (subscription_id, owner),
            ).fetchone()
            if owned is None:
                raise self._not_found(subscription_id)
            changed = tx.execute(
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,"
                " next_attempt_at = ?, delivered_at = NULL, finished_at = NULL"
                " WHERE id = ? AND subscription_id = ?",
                (now, delivery_id, subscription_id),
            ).rowcount
            if not changed:
                raise NotFoundError(
                    f"Delivery '{delivery_id}' not found",
                    {"delivery_id": delivery_id},
                )
            tx.execute(
                "UPDATE webhook_subscriptions SET active = 1, disabled_reason = NULL,"
                " consecutive_failures = 0 WHERE id = ?",
                (subscription_id,),
            )
            row = tx.execute(
                "SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
        self._notify()
        return _delivery(row)

    @staticmethod
    def _not_found(subscription_id: str) -> NotFoundError:
        return NotFoundError(
            f"Webhook '{subscription_id}' not found", {"webhook_id": subscription_id}
        )

    # -- the outbox ------------------------------------------------------------------

    def _on_state_event(self, event: EngineEvent, tx: sqlite3.Connection) -> None:
        if self.enqueue(event, tx):
            self._notify()

    def _on_engine_event(self, event: EngineEvent) -> None:
        # An editor's request event (no owner) has no subscriber by definition:
        # decided here, so a keystroke never reaches the database.
        if event.owner is None and event.type in CALLER_SCOPED_EVENTS:
            return
        # Most other events have no subscriber either: a read finds that out
        # without taking the database's write lock.
        if not self._targets(event, self._store.query(*self._subscribers_sql(event))):
            return
        with self._store.transaction() as own:
            written = self.enqueue(event, own)
        if written:
            self._notify()

    @staticmethod
    def _subscribers_sql(event: EngineEvent) -> tuple[str, tuple[str, ...]]:
        sql = "SELECT id, events FROM webhook_subscriptions WHERE active = 1"
        if event.owner is None:
            return sql, ()
        return sql + " AND owner = ?", (event.owner,)

    @staticmethod
    def _targets(event: EngineEvent, rows: Sequence[sqlite3.Row]) -> list[str]:
        if event.owner is None and event.type in CALLER_SCOPED_EVENTS:
            return []
        return [r["id"] for r in rows if event.type in json.loads(r["events"])]

    def enqueue(self, event: EngineEvent, tx: sqlite3.Connection) -> int:
        """Write the event's outbox rows in ``tx``; returns how many were written.

        Global events (no ``owner``: model events) go to every active
        subscriber of the type; an owner's events only to that owner's
        subscriptions; request events without an owner (from the language
        server) to nobody.
        """
        targets = self._targets(event, tx.execute(*self._subscribers_sql(event)).fetchall())
        if not targets:
            return 0
        # An odd value in event data (a path, NaN) must not roll back the
        # publisher's state change, nor make the row unsendable later.
        data = json.dumps(_plain_json(event.data), ensure_ascii=False, allow_nan=False)
        now = self._clock()
        written = 0
        for subscription_id in targets:
            written += tx.execute(
                "INSERT OR IGNORE INTO webhook_deliveries (id, subscription_id, event_id,"
                " event_type, event_timestamp, data, status, next_attempt_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (
                    f"whd_{uuid.uuid4().hex}",
                    subscription_id,
                    event.id,
                    event.type,
                    event.timestamp,
                    data,
                    now,
                    now,
                ),
            ).rowcount
        return written

    def _notify(self) -> None:
        """Wake the delivery worker (from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    # -- the delivery worker -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the delivery worker runs."""
        return self._runner is not None

    async def start(self) -> None:
        """Start delivering: pending rows from earlier runs first, then new events."""
        if self._runner is not None:
            return
        settings = self._settings
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(
            follow_redirects=False,  # a redirect could lead anywhere: it is a failed attempt
            trust_env=False,  # a proxy from the environment would bypass the address checks
            timeout=httpx.Timeout(
                settings.timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            limits=httpx.Limits(
                max_connections=settings.max_concurrency,
                max_keepalive_connections=settings.max_concurrency,
                keepalive_expiry=5.0,
            ),
        )
        self._runner = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Stop delivering; attempts in flight are cancelled and will be retried."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(runner, *tasks, return_exceptions=True)
        self._tasks.clear()
        # Give up our leases so the next start retries those rows at once.
        with contextlib.suppress(sqlite3.Error):
            self._store.execute(
                "UPDATE webhook_deliveries SET lease_until = 0, lease_owner = NULL"
                " WHERE lease_owner = ?",
                (self._lease_owner,),
            )
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None
        self._wake = None

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        last_prune = 0.0
        while True:
            # Clear before looking: a wake-up that arrives while we look is
            # kept for the next round, so no committed row waits for the poll.
            wake.clear()
            try:
                free = self._settings.max_concurrency - len(self._tasks)
                if free > 0:
                    for claimed in await asyncio.to_thread(self._claim, free):
                        task = asyncio.create_task(self._deliver(claimed))
                        self._tasks.add(task)
                        task.add_done_callback(self._task_done)
                if self._clock() - last_prune >= _PRUNE_EVERY_SECONDS:
                    last_prune = self._clock()
                    await asyncio.to_thread(self._prune)
                if len(self._tasks) >= self._settings.max_concurrency:
                    delay = self._settings.poll_interval_seconds  # a finishing task wakes us
                else:
                    delay = await asyncio.to_thread(self._next_delay)
            except Exception:
                log.exception("webhook delivery loop failed; retrying")
                delay = self._settings.poll_interval_seconds
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery task failed", exc_info=task.exception())
        if self._wake is not None:
            self._wake.set()

    def _claim(self, limit: int) -> list[_Claimed]:
        now = self._clock()
        with self._store.transaction() as tx:
            rows = tx.execute(
                "SELECT d.id, d.subscription_id, d.event_id, d.event_type, d.event_timestamp,"
                " d.data, s.url, s.secret"
                " FROM webhook_deliveries d JOIN webhook_subscriptions s"
                " ON s.id = d.subscription_id"
                " WHERE d.status = 'pending' AND s.active = 1"
                " AND d.next_attempt_at <= ? AND d.lease_until <= ?"
                " ORDER BY d.next_attempt_at, d.created_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            for row in rows:
                tx.execute(
                    "UPDATE webhook_deliveries SET lease_until = ?, lease_owner = ? WHERE id = ?",
                    (now + self._lease_seconds, self._lease_owner, row["id"]),
                )
        return [
            _Claimed(
                id=row["id"],
                subscription_id=row["subscription_id"],
                event_id=row["event_id"],
                url=row["url"],
                secret=row["secret"],
                body=build_body(
                    row["secret"],
                    row["event_type"],
                    row["event_timestamp"],
                    json.loads(row["data"]),
                ),
            )
            for row in rows
        ]

    def _next_delay(self) -> float:
        poll = self._settings.poll_interval_seconds
        rows = self._store.query(
            "SELECT MIN(MAX(d.next_attempt_at, d.lease_until))"
            " FROM webhook_deliveries d JOIN webhook_subscriptions s"
            " ON s.id = d.subscription_id WHERE d.status = 'pending' AND s.active = 1"
        )
        due = rows[0][0] if rows else None
        if due is None:
            return poll
        return min(poll, max(0.0, float(due) - self._clock()))

    def _prune(self) -> None:
        cutoff = self._clock() - self._settings.retention_days * 86400.0
        self._store.execute(
            "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed')"
            " AND COALESCE(finished_at, created_at) < ?",
            (cutoff,),
        )

    async def _deliver(self, claimed: _Claimed) -> None:
        status_code: int | None = None
        retry_after: float | None = None
        error: str | None = None
        timeout = self._settings.timeout_seconds
        try:
            # One bound for the whole attempt: a receiver that trickles bytes
            # never resets it, unlike a per-read timeout.
            async with asyncio.timeout(timeout):
                target = await self.guard.check(claimed.url)
                status_code, retry_header = await self._send(target, claimed)
            retry_after = retry_after_seconds(retry_header, self._clock())
        except UrlRefusedError as exc:
            error = f"URL refused at delivery: {exc}"
        except TimeoutError:
            error = f"timed out after {timeout:g} s"
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:
            # A bug here must cost one attempt, not the row: it is retried.
            log.exception("webhook delivery %s failed unexpectedly", claimed.id)
            error = f"internal error: {type(exc).__name__}"
        await asyncio.to_thread(self._record, claimed, status_code, error, retry_after)

    async def _send(self, target: WebhookTarget, claimed: _Claimed) -> tuple[int, str | None]:
        client = self._client
        assert client is not None
        # Connect to the address the guard checked, not to whatever the name
        # resolves to a moment later (DNS rebinding); Host and SNI keep the name.
        address = target.addresses[0]
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        timestamp = int(self._clock())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": claimed.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(
                claimed.secret, claimed.event_id, timestamp, claimed.body
            ),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = client.build_request(
            "POST",
            f"{target.scheme}://{host}:{target.port}{target.path}",
            content=claimed.body,
            headers=headers,
            extensions=extensions,
        )
        response = await client.send(request, stream=True)
        try:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= self._settings.max_response_bytes:
                    break  # only the status matters; a huge body is not our problem
        finally:
            await response.aclose()
        return response.status_code, response.headers.get("retry-after")

    def _record(
        self,
        claimed: _Claimed,
        status_code: int | None,
        error: str | None,
        retry_after: float | None,
    ) -> None:
        settings = self._settings
        now = self._clock()
        with self._store.transaction() as tx:
            row = tx.execute(
                "SELECT d.attempts, d.lease_owner, s.active FROM webhook_deliveries d"
                " JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE d.id = ?",
                (claimed.id,),
            ).fetchone()
            if row is None or row["lease_owner"] != self._lease_owner:
                return  # deleted meanwhile, or our lease ran out and another took it
            attempts = int(row["attempts"]) + 1
            if status_code is not None and 200 <= status_code < 300:
                tx.execute(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?,"
                    " last_status_code = ?, last_error = NULL, delivered_at = ?,"
                    " finished_at = ?, lease_until = 0, lease_owner = NULL WHERE id = ?",
                    (attempts, status_code, now, now, claimed.id),
                )
                tx.execute(
                    "UPDATE webhook_subscriptions SET consecutive_failures = 0 WHERE id = ?",
                    (claimed.subscription_id,),
                )
                return
            if status_code is not None:
                error = f"HTTP {status_code}"
                if 300 <= status_code < 400:
                    error += " (redirects are not followed)"
            if status_code == 410:
                self._finish_failed(tx, claimed.id, attempts, status_code, error, now)
                self._disable(tx, claimed.subscription_id, "receiver answered 410 Gone", now)
                return
            if attempts >= settings.max_attempts or not row["active"]:
                self._finish_failed(tx, claimed.id, attempts, status_code, error, now)
                # No RETURNING: SQLite before 3.35 (still shipped by some systems) lacks it.
                tx.execute(
                    "UPDATE webhook_subscriptions SET consecutive_failures ="
                    " consecutive_failures + 1 WHERE id = ?",
                    (claimed.subscription_id,),
                )
                failures = tx.execute(
                    "SELECT consecutive_failures FROM webhook_subscriptions WHERE id = ?",
                    (claimed.subscription_id,),
                ).fetchone()
                if failures is not None and failures[0] >= settings.disable_after_failures:
                    self._disable(
                        tx,
                        claimed.subscription_id,
                        f"{failures[0]} consecutive deliveries failed",
                        now,
                    )
                return
            if status_code in (429, 503) and retry_after is not None:
                delay = min(retry_after, settings.retry_after_max_seconds)
            else:
                delay = backoff_delay(
                    attempts, settings.backoff_base_seconds, settings.backoff_max_seconds, self._rng
                )
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = ?, last_status_code = ?,"
                " last_error = ?, next_attempt_at = ?, lease_until = 0, lease_owner = NULL"
                " WHERE id = ?",
                (attempts, status_code, _short(error or "failed"), now + delay, claimed.id),
            )

    @staticmethod
    def _finish_failed(
        tx: sqlite3.Connection,
        delivery_id: str,
        attempts: int,
        status_code: int | None,
        error: str | None,
        now: float,
    ) -> None:
        tx.execute(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = ?,"
            " last_status_code = ?, last_error = ?, finished_at = ?,"
            " lease_until = 0, lease_owner = NULL WHERE id = ?",
            (attempts, status_code, _short(error or "failed"), now, delivery_id),
        )

    @staticmethod
    def _disable(tx: sqlite3.Connection, subscription_id: str, reason: str, now: float) -> None:
        log.warning("webhook %s disabled: %s", subscription_id, reason)
        tx.execute(
            "UPDATE webhook_subscriptions SET active = 0, disabled_reason = ? WHERE id = ?",
            (reason, subscription_id),
        )
        # Nothing more goes to a disabled subscription; its queue ends here
        # (a redelivery brings single deliveries back). An attempt in flight
        # still records its own outcome.
        tx.execute(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = ?, finished_at = ?"
            " WHERE subscription_id = ? AND status = 'pending'",
            (_short(f"subscription disabled: {reason}"), now, subscription_id),
        )
