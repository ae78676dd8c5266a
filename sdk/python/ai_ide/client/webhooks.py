"""Verifying webhook deliveries in a receiver: both signatures, and freshness.

A delivery carries the Standard Webhooks headers (``webhook-id``,
``webhook-timestamp``, ``webhook-signature`` = ``v1,`` + base64 HMAC-SHA256
over ``{id}.{timestamp}.{raw body}``) and a body whose ``signature`` field is
``sha256=`` + hex HMAC-SHA256 over the canonical JSON (sorted keys, no
spaces, UTF-8) of ``event_type``, ``timestamp`` and ``data``. Both keys are
the subscription secret's UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from ai_ide.client.errors import AIIDEError
from ai_ide.wire import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    WebhookPayload,
)

DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(AIIDEError, ValueError):
    """The delivery is not genuine, or too old (a replay?)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing {name} header")


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes the body signature covers."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookPayload:
    """The payload of a genuine, fresh delivery; raises :class:`WebhookVerificationError`.

    Checks the header signature over the raw bytes, the timestamp against
    ``tolerance_seconds``, then the body's own ``signature``. Deduplicate on
    the ``webhook-id`` header: retries repeat it.
    """
    key = secret.encode("utf-8")
    message_id = _header(headers, WEBHOOK_ID_HEADER)
    stamp = _header(headers, WEBHOOK_TIMESTAMP_HEADER)
    try:
        sent_at = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        raise WebhookVerificationError("stale webhook-timestamp (a replay?)")
    mac = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode("ascii")
    offered = [
        sig.removeprefix("v1,")
        for sig in _header(headers, WEBHOOK_SIGNATURE_HEADER).split()
        if sig.startswith("v1,")
    ]
    if not any(hmac.compare_digest(sig, expected) for sig in offered):
        raise WebhookVerificationError("bad webhook-signature")
    try:
        raw = json.loads(body)
        unsigned = {k: raw[k] for k in ("event_type", "timestamp", "data")}
        signature = raw["signature"]
    except (ValueError, KeyError, TypeError):
        raise WebhookVerificationError("the body is not a webhook payload") from None
    digest = hmac.new(key, canonical_json(unsigned), hashlib.sha256).hexdigest()
    if not isinstance(signature, str) or not hmac.compare_digest(f"sha256={digest}", signature):
        raise WebhookVerificationError("bad payload signature")
    return WebhookPayload.model_validate(raw)
