"""Webhooks: subscriptions, their delivery log, and the payload receivers get.

``EVENT_TYPES`` is the one list of event types: the server validates
subscriptions with it, the webhook service filters with it, and a test checks
that every event the engine and services publish is in it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from ai_ide.wire.common import Pagination, StrictModel, WireModel

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
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 512

# Standard Webhooks headers of every delivery.
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"

DeliveryStatus = Literal["pending", "delivered", "failed"]


class CreateWebhook(StrictModel):
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


class WebhookEntry(WireModel):
    """A subscription (its secret is never shown)."""

    id: str
    url: str
    events: list[str]
    created_at: str = Field(description="RFC 3339, UTC")
    active: bool = Field(description="False once disabled (410 Gone, repeated failures).")
    disabled_reason: str | None


class WebhookList(WireModel):
    """The caller's subscriptions."""

    webhooks: list[WebhookEntry]
    pagination: Pagination


class DeliveryEntry(WireModel):
    """One event for one subscription and the state of its attempts."""

    id: str
    event_id: str = Field(description="Sent as the webhook-id header; the same on every attempt.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None = Field(description="RFC 3339; null unless pending")
    delivered_at: str | None
    created_at: str


class DeliveryList(WireModel):
    """A subscription's delivery log, newest first."""

    deliveries: list[DeliveryEntry]
    pagination: Pagination


class WebhookPayload(WireModel):
    """The JSON body of a delivery, as a receiver gets it."""

    event_type: EventType
    timestamp: str = Field(description="RFC 3339, UTC: when the event happened")
    data: dict[str, object]
    signature: str = Field(
        description="sha256= + hex HMAC-SHA256 (key: the secret) over the canonical JSON "
        "of event_type, timestamp and data"
    )
