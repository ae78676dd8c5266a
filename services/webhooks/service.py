"""Webhooks that never lose an event: the service the REST routes and the composition use.

:class:`WebhookService` composes the parts, each in its own module:

- :mod:`~services.webhooks.subscriptions`: the subscriptions, scoped to their
  owner, and the in-memory index that matches an event to subscribers;
- :mod:`~services.webhooks.outbox`: delivery rows, written in the event
  publisher's transaction, leased, recorded and pruned;
- :mod:`~services.webhooks.retry`: the pure retry policy;
- :mod:`~services.webhooks.signing`: the body and its two signatures;
- :mod:`~services.webhooks.delivery`: the HTTP sender and the delivery loop;
- :mod:`~services.webhooks.url_guard`: which targets may be called at all.

The service's two sinks (:meth:`WebhookService.on_engine_event`,
:meth:`WebhookService.on_state_event`) are subscribed to the engine's event
bus and the services' :class:`~services.events.StateEventBus` by
:class:`~services.composition.Services`. An event with an ``owner`` goes only
to that owner's subscriptions; a model event (no owner) goes to every
subscriber of its type; a request event without an owner (the editor's, over
LSP) goes to nobody. Finding the subscribers of an event reads no database,
so an event nobody subscribed to costs a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from engine.config import WebhookSettings
from engine.errors import InvalidRequestError, NotFoundError
from engine.events import EngineEvent
from services.store import Store
from services.webhooks.delivery import DeliveryWorker, HttpSender
from services.webhooks.outbox import Delivery, DeliveryStatus, Outbox
from services.webhooks.retry import RetryPolicy
from services.webhooks.subscriptions import (
    Subscription,
    SubscriptionStore,
    not_found,
    validate,
)
from services.webhooks.url_guard import UrlGuard, UrlRefusedError

__all__ = [
    "Delivery",
    "DeliveryStatus",
    "Subscription",
    "WebhookService",
]


class WebhookService:
    """Webhook subscriptions, the delivery outbox and the worker that drains it."""

    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._subscriptions = SubscriptionStore(store, settings.max_subscriptions_per_caller)
        self._outbox = Outbox(
            store,
            self._subscriptions,
            RetryPolicy.from_settings(settings),
            clock=clock,
            # An attempt ends within timeout_seconds; the margin covers recording it.
            lease_seconds=settings.timeout_seconds * 1.5 + 2.0,
            rng=random.Random(),
        )
        self._sender = HttpSender(
            settings,
            UrlGuard(settings.allow_hosts, resolve_timeout=settings.timeout_seconds),
            clock,
        )
        self._worker = DeliveryWorker(
            self._outbox, self._subscriptions, self._sender, settings, clock
        )

    @property
    def guard(self) -> UrlGuard:
        """The URL guard that registration and every delivery attempt check."""
        return self._sender.guard

    @guard.setter
    def guard(self, guard: UrlGuard) -> None:
        self._sender.guard = guard

    # -- subscriptions ---------------------------------------------------------------

    async def create(
        self, owner: str, url: str, events: Sequence[str], secret: str
    ) -> Subscription:
        """Register a subscription after checking its URL (INVALID_REQUEST naming the field)."""
        chosen = validate(events, secret)
        try:
            await self.guard.check(url)
        except UrlRefusedError as exc:
            raise InvalidRequestError("url", f"Webhook URL refused: {exc}") from None
        # On a thread: with PostgreSQL the insert is a network round trip.
        return await asyncio.to_thread(self._subscriptions.create, owner, url, chosen, secret)

    def subscriptions(
        self, owner: str, limit: int = 100, offset: int = 0
    ) -> tuple[list[Subscription], int]:
        """The owner's subscriptions (oldest first) and their total count."""
        return self._subscriptions.list(owner, limit, offset)

    def get(self, owner: str, subscription_id: str) -> Subscription:
        """One of the owner's subscriptions; NOT_FOUND for anyone else's."""
        return self._subscriptions.get(owner, subscription_id)

    def delete(self, owner: str, subscription_id: str) -> None:
        """Delete a subscription and its delivery log (pending deliveries are dropped)."""
        self._subscriptions.delete(owner, subscription_id)

    def deliveries(
        self,
        owner: str,
        subscription_id: str,
        limit: int = 100,
        offset: int = 0,
        status: DeliveryStatus | None = None,
    ) -> tuple[list[Delivery], int]:
        """A subscription's delivery log, newest first, and its total count."""
        self._subscriptions.get(owner, subscription_id)
        return self._outbox.log(subscription_id, limit, offset, status)

    def redeliver(self, owner: str, subscription_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again, as soon as possible, under the same event id.

        Asking for a redelivery says the receiver is ready, so a subscription
        that was disabled (410 Gone, repeated failures) is enabled again.
        """
        with self._store.transaction() as tx:
            if not self._subscriptions.owned(tx, owner, subscription_id):
                raise not_found(subscription_id)
            delivery = self._outbox.reset(tx, subscription_id, delivery_id)
            if delivery is None:
                raise NotFoundError(
                    f"Delivery '{delivery_id}' not found", {"delivery_id": delivery_id}
                )
            self._subscriptions.reactivate(tx, subscription_id)
        self._subscriptions.committed_active(subscription_id, True)
        self._worker.notify()
        return delivery

    # -- the outbox ------------------------------------------------------------------

    def enqueue(self, event: EngineEvent, tx: Connection) -> int:
        """Write the event's outbox rows in ``tx``; returns how many were written.

        Global events (no ``owner``: model events) go to every active
        subscriber of the type; an owner's events only to that owner's
        subscriptions; request events without an owner (from the language
        server) to nobody.
        """
        return self._outbox.write(tx, event, self._subscriptions.targets(event))

    def on_state_event(self, event: EngineEvent, tx: Connection) -> None:
        """Sink of the state event bus: outbox rows commit with the state change."""
        if self.enqueue(event, tx):
            self._worker.notify()

    def on_engine_event(self, event: EngineEvent) -> None:
        """Sink of the engine's event bus: outbox rows in a transaction of their own."""
        # The index answers without I/O, so an event nobody subscribed to (a
        # keystroke's, above all) never reaches the database.
        targets = self._subscriptions.targets(event)
        if not targets:
            return
        with self._store.transaction() as own:
            written = self._outbox.write(own, event, targets)
        if written:
            self._worker.notify()

    # -- the delivery worker -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the delivery worker runs."""
        return self._worker.running

    async def start(self) -> None:
        """Start delivering: pending rows from earlier runs first, then new events."""
        await self._worker.start()

    async def stop(self) -> None:
        """Stop delivering; attempts in flight are cancelled and will be retried."""
        await self._worker.stop()
