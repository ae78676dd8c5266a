"""AI event webhooks: subscriptions and their delivery log.

Subscriptions belong to the caller who created them: every route looks them
up by id *and* caller, so another caller's subscription is a plain 404.
Delivery itself runs in the webhook service (``services/webhooks/``), never on a request.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from engine.events import EVENT_TYPES
from lsp_server.sidecar import schemas as s
from lsp_server.sidecar.deps import Caller, get_caller, get_services
from services.composition import Services
from services.webhooks.service import MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, Delivery, Subscription

router = APIRouter(prefix="/webhooks/ai-events", tags=["webhooks"])

ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
WebhookId = Annotated[str, Path(max_length=64, description="Subscription id (wh_...)")]
DeliveryId = Annotated[str, Path(max_length=64, description="Delivery id (whd_...)")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]

EventType = Literal[
    "model_loaded",
    "model_unloaded",
    "model_load_failed",
    "model_crashed",
    "inference_completed",
    "error_occurred",
    "job_completed",
    "batch_completed",
]
if set(get_args(EventType)) != set(EVENT_TYPES):
    raise RuntimeError("EventType must list exactly engine.events.EVENT_TYPES")


class CreateWebhook(s.StrictModel):
    """``POST /webhooks/ai-events``."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="http(s) URL of the receiver; private and loopback addresses are refused "
        "unless the server's webhooks.allow_hosts names them.",
        examples=["https://your-app.com/webhooks/ai-events"],
    )
    events: list[EventType] = Field(
        min_length=1, max_length=len(EVENT_TYPES), description="Event types to receive."
    )
    secret: str = Field(
        min_length=MIN_SECRET_LENGTH,
        max_length=MAX_SECRET_LENGTH,
        description="Shared secret for the HMAC signatures; never returned.",
    )


class WebhookEntry(BaseModel):
    """A subscription (its secret is never shown)."""

    id: str
    url: str
    events: list[str]
    created_at: str = Field(description="RFC 3339, UTC")
    active: bool = Field(description="False once disabled (410 Gone, repeated failures).")
    disabled_reason: str | None


class WebhookList(BaseModel):
    """The caller's subscriptions."""

    webhooks: list[WebhookEntry]
    pagination: s.Pagination


class DeliveryEntry(BaseModel):
    """One event for one subscription and the state of its attempts."""

    id: str
    event_id: str = Field(description="Sent as the webhook-id header; the same on every attempt.")
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None = Field(description="RFC 3339; null unless pending")
    delivered_at: str | None
    created_at: str


class DeliveryList(BaseModel):
    """A subscription's delivery log, newest first."""

    deliveries: list[DeliveryEntry]
    pagination: s.Pagination


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
    items, total = services.webhooks.subscriptions(caller.id, limit, offset)
    return WebhookList(
        webhooks=[to_webhook_entry(x) for x in items],
        pagination=s.Pagination(total_count=total, has_more=offset + len(items) < total),
    )


@router.get("/{webhook_id}", response_model=WebhookEntry, summary="One webhook subscription")
async def get_webhook(
    webhook_id: WebhookId, services: ServicesDep, caller: CallerDep
) -> WebhookEntry:
    """A subscription of the caller's; anyone else's is 404."""
    return to_webhook_entry(services.webhooks.get(caller.id, webhook_id))


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
    services.webhooks.delete(caller.id, webhook_id)
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
    items, total = services.webhooks.deliveries(caller.id, webhook_id, limit, offset, status)
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
    return to_delivery_entry(services.webhooks.redeliver(caller.id, webhook_id, delivery_id))
