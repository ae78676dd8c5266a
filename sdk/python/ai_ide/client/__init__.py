"""The Python SDK: :class:`AIIDE` (sync) and :class:`AsyncAIIDE` over httpx.

Requests and answers are the wire contract's models (:mod:`ai_ide.wire`),
errors are one exception class per error code (:mod:`ai_ide.client.errors`).
"""

from ai_ide.client._async import AsyncAI, AsyncAIIDE, AsyncStream
from ai_ide.client._core import RetryInfo, default_key_file, resolve_api_key
from ai_ide.client._sync import AI, AIIDE, Stream
from ai_ide.client.errors import *  # noqa: F403  (the exception classes are the API)
from ai_ide.client.errors import ERROR_CLASSES, AIIDEError, APIStatusError
from ai_ide.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "AI",
    "AIIDE",
    "ERROR_CLASSES",
    "AIIDEError",
    "APIStatusError",
    "AsyncAI",
    "AsyncAIIDE",
    "AsyncStream",
    "RetryInfo",
    "Stream",
    "WebhookVerificationError",
    "default_key_file",
    "resolve_api_key",
    "verify_webhook",
]
