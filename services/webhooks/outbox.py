"""The outbox: one ``webhook_deliveries`` row per event and subscription, until it ends.

Rows are written in the transaction of the event's publisher when there is
one, so an event commits, or rolls back, with the state change that caused
it. The delivery loop claims due rows with a lease that names this process
(so replicas on one store, or a restart, never lose or double-claim a row:
on PostgreSQL the claim reads with ``FOR UPDATE SKIP LOCKED``, so replicas
claiming together skip each other's rows instead of waiting) and records
each attempt's outcome as the retry policy decides it. Rows stay until
delivered or failed, so a restart or ``kill -9`` resumes them: delivery is
at least once, always under the same event id. Finished rows are pruned after the retention period.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Table, and_, case, delete, exists, func, literal, select, update

from engine.events import EngineEvent
from services.store import Store
from services.webhooks.retry import AttemptResult, Decision, RetryPolicy
from services.webhooks.signing import build_body
from services.webhooks.subscriptions import SubscriptionStore

DeliveryStatus = Literal["pending", "delivered", "failed"]

MAX_ERROR_CHARS = 300


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


def _delivery(row: Any) -> Delivery:
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
        self._table: Table = store.tables.webhook_deliveries
        self._subs: Table = store.tables.webhook_subscriptions
        self._subscriptions = subscriptions
        self._policy = policy
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._rng = rng
        # Leases name their holder, so rows of a process that died are only
        # taken over once its lease has expired.
        self._lease_owner = uuid.uuid4().hex

    def write(self, tx: Connection, event: EngineEvent, subscription_ids: Sequence[str]) -> int:
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
        d, s = self._table, self._subs
        written = 0
        for subscription_id in subscription_ids:
            # One row per (subscription, event): an event written twice (a
            # retried publisher) adds nothing, in either dialect.
            already = exists().where(d.c.subscription_id == s.c.id, d.c.event_id == event.id)
            source = select(
                literal(f"whd_{uuid.uuid4().hex}"),
                s.c.id,
                literal(event.id),
                literal(event.type),
                literal(event.timestamp),
                literal(data),
                literal("pending"),
                literal(now),
                literal(now),
            ).where(s.c.id == subscription_id, s.c.active == 1, ~already)
            # Counted from RETURNING: psycopg reports no rowcount for an INSERT.
            written += len(
                tx.execute(
                    d.insert()
                    .from_select(
                        [
                            "id",
                            "subscription_id",
                            "event_id",
                            "event_type",
                            "event_timestamp",
                            "data",
                            "status",
                            "next_attempt_at",
                            "created_at",
                        ],
                        source,
                    )
                    .returning(d.c.id)
                ).all()
            )
        return written

    def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due rows of active subscriptions for one attempt each."""
        now = self._clock()
        d, s = self._table, self._subs
        with self._store.transaction() as tx:
            rows = (
                tx.execute(
                    select(
                        d.c.id,
                        d.c.subscription_id,
                        d.c.event_id,
                        d.c.event_type,
                        d.c.event_timestamp,
                        d.c.data,
                        s.c.url,
                        s.c.secret,
                    )
                    .join(s, s.c.id == d.c.subscription_id)
                    .where(
                        d.c.status == "pending",
                        s.c.active == 1,
                        d.c.next_attempt_at <= now,
                        d.c.lease_until <= now,
                    )
                    .order_by(d.c.next_attempt_at, d.c.created_at)
                    .limit(limit)
                    # Lock only the delivery rows; rows another replica is
                    # claiming right now are skipped, not waited for.
                    .with_for_update(skip_locked=True, of=d)
                )
                .mappings()
                .all()
            )
            if rows:
                tx.execute(
                    update(d)
                    .where(d.c.id.in_([row["id"] for row in rows]))
                    .values(lease_until=now + self._lease_seconds, lease_owner=self._lease_owner)
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
        d, s = self._table, self._subs
        later = case(
            (d.c.lease_until > d.c.next_attempt_at, d.c.lease_until), else_=d.c.next_attempt_at
        )
        rows = self._store.query(
            select(func.min(later).label("due"))
            .select_from(d.join(s, s.c.id == d.c.subscription_id))
            .where(d.c.status == "pending", s.c.active == 1)
        )
        due = rows[0]["due"] if rows else None
        return None if due is None else float(due)

    def record(self, claimed: Claimed, result: AttemptResult) -> Decision | None:
        """Record one attempt as the retry policy decides; None if the row is no longer ours."""
        now = self._clock()
        d = self._table
        with self._store.transaction() as tx:
            # The subscription's row first, then the delivery's: every
            # transaction locks in that order, so replicas never deadlock.
            health = self._subscriptions.health(tx, claimed.subscription_id)
            if health is None:
                return None  # deleted meanwhile (its deliveries went with it)
            row = (
                tx.execute(
                    select(d.c.attempts, d.c.lease_owner)
                    .where(d.c.id == claimed.id)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None or row["lease_owner"] != self._lease_owner:
                return None  # deleted meanwhile, or our lease ran out and another took it
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

    def _apply(self, tx: Connection, delivery_id: str, decision: Decision, now: float) -> None:
        row = update(self._table).where(self._table.c.id == delivery_id)
        released = {"lease_until": 0.0, "lease_owner": None}
        if decision.outcome == "delivered":
            tx.execute(
                row.values(
                    status="delivered",
                    attempts=decision.attempts,
                    last_status_code=decision.status_code,
                    last_error=None,
                    delivered_at=now,
                    finished_at=now,
                    **released,
                )
            )
        elif decision.outcome == "retry":
            tx.execute(
                row.values(
                    attempts=decision.attempts,
                    last_status_code=decision.status_code,
                    last_error=short(decision.error or "failed"),
                    next_attempt_at=decision.retry_at,
                    **released,
                )
            )
        else:
            tx.execute(
                row.values(
                    status="failed",
                    attempts=decision.attempts,
                    last_status_code=decision.status_code,
                    last_error=short(decision.error or "failed"),
                    finished_at=now,
                    **released,
                )
            )

    def _fail_pending(
        self, tx: Connection, subscription_id: str, reason: str | None, now: float
    ) -> None:
        # Nothing more goes to a disabled subscription; its queue ends here
        # (a redelivery brings single deliveries back). An attempt in flight
        # still records its own outcome.
        d = self._table
        tx.execute(
            update(d)
            .where(d.c.subscription_id == subscription_id, d.c.status == "pending")
            .values(
                status="failed",
                last_error=short(f"subscription disabled: {reason}"),
                finished_at=now,
            )
        )

    def release_leases(self) -> None:
        """Give up this process's leases, so the next start retries those rows at once."""
        d = self._table
        self._store.execute(
            update(d)
            .where(d.c.lease_owner == self._lease_owner)
            .values(lease_until=0.0, lease_owner=None)
        )

    def prune(self, retention_seconds: float) -> int:
        """Delete delivered and failed rows older than the retention; returns how many."""
        cutoff = self._clock() - retention_seconds
        d = self._table
        return self._store.execute(
            delete(d).where(
                d.c.status.in_(["delivered", "failed"]),
                func.coalesce(d.c.finished_at, d.c.created_at) < cutoff,
            )
        )

    def log(
        self,
        subscription_id: str,
        limit: int = 100,
        offset: int = 0,
        status: DeliveryStatus | None = None,
    ) -> tuple[list[Delivery], int]:
        """A subscription's deliveries, newest first, and their total count."""
        d = self._table
        where = d.c.subscription_id == subscription_id
        if status is not None:
            where = and_(where, d.c.status == status)
        rows = self._store.query(
            select(d)
            .where(where)
            .order_by(d.c.created_at.desc(), d.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        total = self._store.query(select(func.count().label("n")).select_from(d).where(where))[0][
            "n"
        ]
        return [_delivery(r) for r in rows], int(total)

    def reset(self, tx: Connection, subscription_id: str, delivery_id: str) -> Delivery | None:
        """Make a delivery pending again, due now, with no attempts (in ``tx``); None if absent."""
        d = self._table
        changed = tx.execute(
            update(d)
            .where(d.c.id == delivery_id, d.c.subscription_id == subscription_id)
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=self._clock(),
                delivered_at=None,
                finished_at=None,
            )
        ).rowcount
        if not changed:
            return None
        row = tx.execute(select(d).where(d.c.id == delivery_id)).mappings().first()
        return _delivery(row)
