"""The bytes a delivery sends and the two signatures over them.

The body is ``{"event_type", "timestamp", "data", "signature"}`` where
``signature`` is ``sha256=`` + hex HMAC-SHA256 over the canonical JSON of the
other three fields. The Standard Webhooks headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` (``v1,`` + base64
HMAC-SHA256 over ``{id}.{timestamp}.{body}``) let receivers reject replays.
Both keys are the secret's UTF-8 bytes. See README "Webhooks".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


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
