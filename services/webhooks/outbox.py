"""The outbox: one ``webhook_deliveries`` row per event and subscription, until it ends.

Rows are written in the transaction of the event's publisher when there is
one, so an event commits, or rolls back, with the state change that caused
it. The delivery loop claims due rows with a lease that names this process
(so two processes on one data directory, or a restart, never lose or
double-claim a row) and records each attempt's outcome as the retry policy
decides it. Rows stay until delivered or failed, so a restart or ``kill -9``
resumes them: delivery is at least once, always under the same event id.
Finished rows are pruned after the retention period.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from engine.events import EngineEvent
from services.store import Store
from services.webhooks.retry import AttemptResult, Decision, RetryPolicy
from services.webhooks.signing import build_body
from services.webhooks.subscriptions import SubscriptionStore

DeliveryStatus = Literal["pending", "delivered", "failed"]

MAX_ERROR_CHARS = 300

SCHEMA = (
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
class Claimed:
    """A delivery leased to this process for one attempt."""

    id: str
    subscription_id: str
    event_id: str
    url: str
    secret: str
    body: bytes


def plain_json(value: Any) -> Any:
    """``value`` with only JSON types: non-finite floats become None, others strings."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def short(text: str) -> str:
    """``text`` cut to what the delivery log keeps of an error."""
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _rfc3339(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


class Outbox:
    """The ``webhook_deliveries`` table: writing, leasing, recording, pruning."""

    def __init__(
        self,
        store: Store,
        subscriptions: SubscriptionStore,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float],
        lease_seconds: float,
        rng: random.Random,
    ) -> None:
        self._store = store
        self._subscriptions = subscriptions
        self._policy = policy
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._rng = rng
        # Leases name their holder, so rows of a process that died are only
        # taken over once its lease has expired.
        self._lease_owner = uuid.uuid4().hex
        store.ensure_schema("webhook_deliveries", SCHEMA)

    def write(
        self, tx: sqlite3.Connection, event: EngineEvent, subscription_ids: Sequence[str]
    ) -> int:
        """Write the event's rows for ``subscription_ids`` in ``tx``; returns how many.

        Each row is written only if its subscription is still there and active
        at this point of the transaction: the ids come from an index that may
        lag a delete or a disable by a moment, and a row for a deleted
        subscription would break the foreign key and roll back the publisher.
        """
        if not subscription_ids:
            return 0
        # An odd value in event data (a path, NaN) must not roll back the
        # publisher's state change, nor make the row unsendable later.
        data = json.dumps(plain_json(event.data), ensure_ascii=False, allow_nan=False)
        now = self._clock()
        written = 0
        for subscription_id in subscription_ids:
            written += tx.execute(
                "INSERT OR IGNORE INTO webhook_deliveries (id, subscription_id, event_id,"
                " event_type, event_timestamp, data, status, next_attempt_at, created_at)"
                " SELECT ?, id, ?, ?, ?, ?, 'pending', ?, ? FROM webhook_subscriptions"
                " WHERE id = ? AND active = 1",
                (
                    f"whd_{uuid.uuid4().hex}",
                    event.id,
                    event.type,
                    event.timestamp,
                    data,
                    now,
                    now,
                    subscription_id,
                ),
            ).rowcount
        return written

    def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due rows of active subscriptions for one attempt each."""
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
            Claimed(
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

    def next_due(self) -> float | None:
        """When the earliest pending row of an active subscription can be claimed."""
        rows = self._store.query(
            "SELECT MIN(MAX(d.next_attempt_at, d.lease_until))"
            " FROM webhook_deliveries d JOIN webhook_subscriptions s"
            " ON s.id = d.subscription_id WHERE d.status = 'pending' AND s.active = 1"
        )
        due = rows[0][0] if rows else None
        return None if due is None else float(due)

    def record(self, claimed: Claimed, result: AttemptResult) -> Decision | None:
        """Record one attempt as the retry policy decides; None if the row is no longer ours."""
        now = self._clock()
        with self._store.transaction() as tx:
            row = tx.execute(
                "SELECT attempts, lease_owner FROM webhook_deliveries WHERE id = ?",
                (claimed.id,),
            ).fetchone()
            if row is None or row["lease_owner"] != self._lease_owner:
                return None  # deleted meanwhile, or our lease ran out and another took it
            health = self._subscriptions.health(tx, claimed.subscription_id)
            if health is None:
                return None  # unreachable while the foreign key cascades; kept for safety
            decision = self._policy.decide(
                result,
                attempts_before=int(row["attempts"]),
                consecutive_failures=health.consecutive_failures,
                now=now,
                rng=self._rng,
                subscription_active=health.active,
            )
            self._apply(tx, claimed.id, decision, now)
            self._subscriptions.apply(tx, claimed.subscription_id, decision)
            if decision.outcome == "disable":
                self._fail_pending(tx, claimed.subscription_id, decision.disable_reason, now)
        if decision.outcome == "disable":
            self._subscriptions.committed_active(claimed.subscription_id, False)
        return decision

    @staticmethod
    def _apply(tx: sqlite3.Connection, delivery_id: str, decision: Decision, now: float) -> None:
        if decision.outcome == "delivered":
            tx.execute(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?,"
                " last_status_code = ?, last_error = NULL, delivered_at = ?,"
                " finished_at = ?, lease_until = 0, lease_owner = NULL WHERE id = ?",
                (decision.attempts, decision.status_code, now, now, delivery_id),
            )
        elif decision.outcome == "retry":
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = ?, last_status_code = ?,"
                " last_error = ?, next_attempt_at = ?, lease_until = 0, lease_owner = NULL"
                " WHERE id = ?",
                (
                    decision.attempts,
                    decision.status_code,
                    short(decision.error or "failed"),
                    decision.retry_at,
                    delivery_id,
                ),
            )
        else:
            tx.execute(
                "UPDATE webhook_deliveries SET status = 'failed', attempts = ?,"
                " last_status_code = ?, last_error = ?, finished_at = ?,"
                " lease_until = 0, lease_owner = NULL WHERE id = ?",
                (
                    decision.attempts,
                    decision.status_code,
                    short(decision.error or "failed"),
                    now,
                    delivery_id,
                ),
            )

    @staticmethod
    def _fail_pending(
        tx: sqlite3.Connection, subscription_id: str, reason: str | None, now: float
    ) -> None:
        # Nothing more goes to a disabled subscription; its queue ends here
        # (a redelivery brings single deliveries back). An attempt in flight
        # still records its own outcome.
        tx.execute(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = ?, finished_at = ?"
            " WHERE subscription_id = ? AND status = 'pending'",
            (short(f"subscription disabled: {reason}"), now, subscription_id),
        )

    def release_leases(self) -> None:
        """Give up this process's leases, so the next start retries those rows at once."""
        self._store.execute(
            "UPDATE webhook_deliveries SET lease_until = 0, lease_owner = NULL"
            " WHERE lease_owner = ?",
            (self._lease_owner,),
        )

    def prune(self, retention_seconds: float) -> int:
        """Delete delivered and failed rows older than the retention; returns how many."""
        cutoff = self._clock() - retention_seconds
        return self._store.execute(
            "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed')"
            " AND COALESCE(finished_at, created_at) < ?",
            (cutoff,),
        )

    def log(
        self,
        subscription_id: str,
        limit: int = 100,
        offset: int = 0,
        status: DeliveryStatus | None = None,
    ) -> tuple[list[Delivery], int]:
        """A subscription's deliveries, newest first, and their total count."""
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

    def reset(
        self, tx: sqlite3.Connection, subscription_id: str, delivery_id: str
    ) -> Delivery | None:
        """Make a delivery pending again, due now, with no attempts (in ``tx``); None if absent."""
        changed = tx.execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,"
            " next_attempt_at = ?, delivered_at = NULL, finished_at = NULL"
            " WHERE id = ? AND subscription_id = ?",
            (self._clock(), delivery_id, subscription_id),
        ).rowcount
        if not changed:
            return None
        row = tx.execute("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return _delivery(row)
