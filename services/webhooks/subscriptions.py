"""Webhook subscriptions: the table, owner scoping, limits, and who gets an event.

Every read and change is scoped to the subscription's ``owner`` (the caller
that created it), so another caller's subscription simply does not exist.

Matching an event to subscribers reads no database: a :class:`SubscriberIndex`
of active subscriptions (owner -> event type -> ids) is loaded when the
service is built, changed after each local create, delete, disable or
re-enable commits, and reloaded by the delivery loop so that changes made by
another process on the same store (a replica) are seen within a poll interval.
The outbox re-checks each target inside its transaction, so an index that
lags a deletion or a disable never writes a row for it.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select, update

from ai_ide.wire.webhooks import EVENT_TYPES, MAX_SECRET_LENGTH, MIN_SECRET_LENGTH
from engine.errors import InvalidRequestError, NotFoundError
from engine.events import EngineEvent, utc_timestamp
from services.store import Store
from services.webhooks.retry import Decision

log = logging.getLogger(__name__)

# Events about one request. Without an owner they came from the editor (LSP)
# face, which has no API caller: they carry the user's code, so they go to
# nobody rather than to every subscriber.
CALLER_SCOPED_EVENTS = frozenset(
    {"inference_completed", "error_occurred", "job_completed", "batch_completed"}
)


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
class SubscriptionHealth:
    """What the retry policy needs to know about a subscription."""

    active: bool
    consecutive_failures: int


@dataclass(frozen=True)
class IndexEntry:
    """One subscription as the index keeps it."""

    id: str
    owner: str
    events: frozenset[str]
    active: bool


def goes_to_nobody(event: EngineEvent) -> bool:
    """True for a request event without an owner (the editor's): no one may receive it."""
    return event.owner is None and event.type in CALLER_SCOPED_EVENTS


def validate(events: Sequence[str], secret: str) -> tuple[str, ...]:
    """The event types to subscribe to, deduplicated; INVALID_REQUEST naming the bad field."""
    chosen = tuple(dict.fromkeys(events))
    if not chosen:
        raise InvalidRequestError("events", "events must name at least one event type")
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise InvalidRequestError(
            "events", f"Unknown event type '{unknown[0]}'", allowed=list(EVENT_TYPES)
        )
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise InvalidRequestError(
            "secret",
            f"secret must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters long",
        )
    return chosen


def not_found(subscription_id: str) -> NotFoundError:
    """The NOT_FOUND error for a subscription that is missing or someone else's."""
    return NotFoundError(f"Webhook '{subscription_id}' not found", {"webhook_id": subscription_id})


class SubscriberIndex:
    """Active subscriptions by owner and by event type; thread-safe, no I/O.

    Changes are rare (an API call) and lookups frequent (every event), so each
    change rebuilds both maps and a lookup is two dictionary reads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, IndexEntry] = {}
        self._by_owner: dict[str, dict[str, frozenset[str]]] = {}
        self._by_type: dict[str, frozenset[str]] = {}
        # Bumped by every local change, so a reload that read the table
        # before a change does not overwrite it with the older rows.
        self._version = 0

    @property
    def version(self) -> int:
        """A number that changes with every local change."""
        with self._lock:
            return self._version

    def targets(self, event: EngineEvent) -> list[str]:
        """Ids of the active subscriptions that receive ``event``.

        An owner's events go to that owner's subscriptions of the type; an
        event without an owner (a model event) to every subscription of the
        type, except request events, which go to nobody.
        """
        if goes_to_nobody(event):
            return []
        with self._lock:
            if event.owner is None:
                ids = self._by_type.get(event.type, frozenset())
            else:
                ids = self._by_owner.get(event.owner, {}).get(event.type, frozenset())
        return sorted(ids)

    def put(self, entry: IndexEntry) -> None:
        """Add or replace one subscription."""
        with self._lock:
            self._entries[entry.id] = entry
            self._changed()

    def set_active(self, subscription_id: str, active: bool) -> None:
        """Mark a known subscription active or disabled."""
        with self._lock:
            entry = self._entries.get(subscription_id)
            if entry is not None and entry.active != active:
                self._entries[subscription_id] = IndexEntry(
                    entry.id, entry.owner, entry.events, active
                )
                self._changed()

    def remove(self, subscription_id: str) -> None:
        """Forget a deleted subscription."""
        with self._lock:
            if self._entries.pop(subscription_id, None) is not None:
                self._changed()

    def replace(self, entries: Iterable[IndexEntry], version: int) -> bool:
        """Replace everything with ``entries`` read at ``version``; False if changed since."""
        with self._lock:
            if version != self._version:
                return False
            self._entries = {entry.id: entry for entry in entries}
            self._rebuild()
            return True

    def _changed(self) -> None:
        self._version += 1
        self._rebuild()

    def _rebuild(self) -> None:
        by_owner: dict[str, dict[str, set[str]]] = {}
        by_type: dict[str, set[str]] = {}
        for entry in self._entries.values():
            if not entry.active:
                continue
            types = by_owner.setdefault(entry.owner, {})
            for event_type in entry.events:
                types.setdefault(event_type, set()).add(entry.id)
                by_type.setdefault(event_type, set()).add(entry.id)
        self._by_owner = {
            owner: {t: frozenset(ids) for t, ids in types.items()}
            for owner, types in by_owner.items()
        }
        self._by_type = {t: frozenset(ids) for t, ids in by_type.items()}


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row["id"],
        owner=row["owner"],
        url=row["url"],
        events=tuple(json.loads(row["events"])),
        created_at=row["created_at"],
        active=bool(row["active"]),
        disabled_reason=row["disabled_reason"],
    )


class SubscriptionStore:
    """The ``webhook_subscriptions`` table and the index of its active rows."""

    def __init__(self, store: Store, max_per_owner: int) -> None:
        self._store = store
        self._table: Table = store.tables.webhook_subscriptions
        self._max_per_owner = max_per_owner
        self._index = SubscriberIndex()
        self.reload()

    def targets(self, event: EngineEvent) -> list[str]:
        """Ids of the active subscriptions that receive ``event`` (no I/O)."""
        return self._index.targets(event)

    def reload(self) -> None:
        """Read the index from the table again (for changes made by other processes)."""
        version = self._index.version
        t = self._table
        rows = self._store.query(select(t.c.id, t.c.owner, t.c.events, t.c.active))
        # A local change between the read and now wins; the next reload catches up.
        self._index.replace(
            (
                IndexEntry(
                    r["id"], r["owner"], frozenset(json.loads(r["events"])), bool(r["active"])
                )
                for r in rows
            ),
            version,
        )

    def create(self, owner: str, url: str, events: Sequence[str], secret: str) -> Subscription:
        """Store a subscription (already validated); INVALID_REQUEST past the owner's limit."""
        subscription = Subscription(
            id=f"wh_{uuid.uuid4().hex}",
            owner=owner,
            url=url,
            events=tuple(events),
            created_at=utc_timestamp(),
            active=True,
            disabled_reason=None,
        )
        limit = self._max_per_owner
        t = self._table
        with self._store.transaction() as tx:
            count = tx.execute(
                select(func.count()).select_from(t).where(t.c.owner == owner)
            ).scalar_one()
            if count >= limit:
                raise InvalidRequestError(
                    "webhooks",
                    f"A caller may have at most {limit} webhook subscriptions; delete one first",
                    limit=limit,
                )
            tx.execute(
                t.insert().values(
                    id=subscription.id,
                    owner=owner,
                    url=url,
                    events=json.dumps(list(subscription.events)),
                    secret=secret,
                    created_at=subscription.created_at,
                    seq=select(func.coalesce(func.max(t.c.seq), 0) + 1).scalar_subquery(),
                )
            )
        self._index.put(
            IndexEntry(subscription.id, owner, frozenset(subscription.events), active=True)
        )
        return subscription

    def list(self, owner: str, limit: int = 100, offset: int = 0) -> tuple[list[Subscription], int]:
        """The owner's subscriptions (oldest first) and their total count."""
        t = self._table
        rows = self._store.query(
            select(t)
            .where(t.c.owner == owner)
            .order_by(t.c.created_at, t.c.seq, t.c.id)
            .limit(limit)
            .offset(offset)
        )
        total = self._store.query(
            select(func.count().label("n")).select_from(t).where(t.c.owner == owner)
        )[0]["n"]
        return [_subscription(r) for r in rows], int(total)

    def get(self, owner: str, subscription_id: str) -> Subscription:
        """One of the owner's subscriptions; NOT_FOUND for anyone else's."""
        t = self._table
        rows = self._store.query(select(t).where(t.c.id == subscription_id, t.c.owner == owner))
        if not rows:
            raise not_found(subscription_id)
        return _subscription(rows[0])

    def delete(self, owner: str, subscription_id: str) -> None:
        """Delete a subscription; its deliveries go with it (ON DELETE CASCADE)."""
        t = self._table
        with self._store.transaction() as tx:
            deleted = tx.execute(
                delete(t).where(t.c.id == subscription_id, t.c.owner == owner)
            ).rowcount
        if not deleted:
            raise not_found(subscription_id)
        self._index.remove(subscription_id)

    def owned(self, tx: Connection, owner: str, subscription_id: str) -> bool:
        """Whether ``subscription_id`` exists and belongs to ``owner`` (in ``tx``, locked).

        The row stays locked until ``tx`` ends, like in :meth:`health`: a
        subscription row is always locked before its deliveries' rows.
        """
        t = self._table
        row = tx.execute(
            select(t.c.id).where(t.c.id == subscription_id, t.c.owner == owner).with_for_update()
        ).first()
        return row is not None

    def health(self, tx: Connection, subscription_id: str) -> SubscriptionHealth | None:
        """The subscription's active flag and failure streak (in ``tx``); None if deleted.

        On PostgreSQL the row stays locked until ``tx`` ends, so that two
        replicas recording attempts for one subscription count its failure
        streak one after the other.
        """
        t = self._table
        row = (
            tx.execute(
                select(t.c.active, t.c.consecutive_failures)
                .where(t.c.id == subscription_id)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return SubscriptionHealth(bool(row["active"]), int(row["consecutive_failures"]))

    def apply(self, tx: Connection, subscription_id: str, decision: Decision) -> None:
        """Record what an attempt's decision means for the subscription (in ``tx``).

        After the transaction commits, a ``disable`` must also reach the index:
        call :meth:`committed_active`.
        """
        if decision.outcome == "retry":
            return  # the streak counts deliveries, not attempts
        t = self._table
        if decision.outcome == "disable":
            log.warning("webhook %s disabled: %s", subscription_id, decision.disable_reason)
            tx.execute(
                update(t)
                .where(t.c.id == subscription_id)
                .values(
                    active=0,
                    disabled_reason=decision.disable_reason,
                    consecutive_failures=decision.consecutive_failures,
                )
            )
            return
        tx.execute(
            update(t)
            .where(t.c.id == subscription_id)
            .values(consecutive_failures=decision.consecutive_failures)
        )

    def reactivate(self, tx: Connection, subscription_id: str) -> None:
        """Enable a subscription again with a clean streak (in ``tx``).

        After the commit, call :meth:`committed_active` so the index follows.
        """
        t = self._table
        tx.execute(
            update(t)
            .where(t.c.id == subscription_id)
            .values(active=1, disabled_reason=None, consecutive_failures=0)
        )

    def committed_active(self, subscription_id: str, active: bool) -> None:
        """Tell the index about a committed disable or re-enable.

        Called after the commit, never inside the transaction: an index that
        ran ahead of a transaction that then rolled back would drop events.
        """
        self._index.set_active(subscription_id, active)
