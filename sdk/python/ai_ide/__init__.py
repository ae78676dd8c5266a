"""ai-ide's wire contract (:mod:`ai_ide.wire`) and Python SDK (:mod:`ai_ide.client`).

from ai_ide import AIIDE

client = AIIDE()  # key from $AI_IDE_API_KEY or the local server's key file
print(client.ai.inference.completion(context={"code": "def add(a, b):\\n    return "}).text)
"""

from ai_ide.client import AIIDE, AsyncAIIDE, AsyncStream, RetryInfo, Stream, verify_webhook
from ai_ide.client.errors import (
    AIIDEError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ModelNotFoundError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    ServiceUnavailableError,
    UnauthorizedError,
)

__all__ = [
    "AIIDE",
    "AIIDEError",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncAIIDE",
    "AsyncStream",
    "ModelNotFoundError",
    "NotFoundError",
    "RateLimitError",
    "RequestValidationError",
    "RetryInfo",
    "ServiceUnavailableError",
    "Stream",
    "UnauthorizedError",
    "verify_webhook",
]
