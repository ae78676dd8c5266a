"""AI event webhooks: subscriptions and their delivery log.

Subscriptions belong to the caller who created them: every route looks them
up by id *and* caller, so another caller's subscription is a plain 404.
Delivery itself runs in the webhook service (``services/webhooks/``), never on a request.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from ai_ide import wire as s
from ai_ide.wire import CreateWebhook, DeliveryEntry, DeliveryList, WebhookEntry, WebhookList
from lsp_server.sidecar.deps import CallerDep, ServicesDep
from services.webhooks.service import Delivery, Subscription

router = APIRouter(prefix="/webhooks/ai-events", tags=["webhooks"])

WebhookId = Annotated[str, Path(max_length=64, description="Subscription id (wh_...)")]
DeliveryId = Annotated[str, Path(max_length=64, description="Delivery id (whd_...)")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def to_webhook_entry(subscription: Subscription) -> WebhookEntry:
    """The API view of a subscription."""
    return WebhookEntry(
        id=subscription.id,
        url=subscription.url,
        events=list(subscription.events),
        created_at=subscription.created_at,
        active=subscription.active,
        disabled_reason=subscription.disabled_reason,
    )


def to_delivery_entry(delivery: Delivery) -> DeliveryEntry:
    """The API view of a delivery."""
    return DeliveryEntry(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


@router.post("", response_model=WebhookEntry, status_code=201, summary="Subscribe to AI events")
async def create_webhook(
    body: CreateWebhook, services: ServicesDep, caller: CallerDep
) -> WebhookEntry:
    """Register a receiver; its URL is checked (and resolved) now and before every delivery."""
    subscription = await services.webhooks.create(caller.id, body.url, body.events, body.secret)
    return to_webhook_entry(subscription)


@router.get("", response_model=WebhookList, summary="List your webhook subscriptions")
async def list_webhooks(
    services: ServicesDep, caller: CallerDep, limit: Limit = 100, offset: Offset = 0
) -> WebhookList:
    """The caller's own subscriptions, oldest first."""
    items, total = await asyncio.to_thread(
        services.webhooks.subscriptions, caller.id, limit, offset
    )
    return WebhookList(
        webhooks=[to_webhook_entry(x) for x in items],
        pagination=s.Pagination(total_count=total, has_more=offset + len(items) < total),
    )


@router.get("/{webhook_id}", response_model=WebhookEntry, summary="One webhook subscription")
async def get_webhook(
    webhook_id: WebhookId, services: ServicesDep, caller: CallerDep
) -> WebhookEntry:
    """A subscription of the caller's; anyone else's is 404."""
    return to_webhook_entry(await asyncio.to_thread(services.webhooks.get, caller.id, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook subscription",
)
async def delete_webhook(
    webhook_id: WebhookId, services: ServicesDep, caller: CallerDep
) -> Response:
    """Delete the subscription with its delivery log; pending deliveries are dropped."""
    await asyncio.to_thread(services.webhooks.delete, caller.id, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="Delivery log of a subscription",
)
async def list_deliveries(
    webhook_id: WebhookId,
    services: ServicesDep,
    caller: CallerDep,
    limit: Limit = 100,
    offset: Offset = 0,
    status: Literal["pending", "delivered", "failed"] | None = None,
) -> DeliveryList:
    """Every delivery (newest first) with attempts, last status code or error, next attempt."""
    items, total = await asyncio.to_thread(
        services.webhooks.deliveries, caller.id, webhook_id, limit, offset, status
    )
    return DeliveryList(
        deliveries=[to_delivery_entry(x) for x in items],
        pagination=s.Pagination(total_count=total, has_more=offset + len(items) < total),
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryEntry,
    status_code=202,
    summary="Send a delivery again",
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, services: ServicesDep, caller: CallerDep
) -> DeliveryEntry:
    """Queue the delivery again under the same event id; re-enables a disabled subscription."""
    delivery = await asyncio.to_thread(
        services.webhooks.redeliver, caller.id, webhook_id, delivery_id
    )
    return to_delivery_entry(delivery)
