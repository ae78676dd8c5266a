"""The error envelope and the error codes the API answers with."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from ai_ide.wire.common import WireModel

ErrorCode = Literal[
    "VALIDATION_ERROR",
    "BAD_REQUEST",
    "INVALID_REQUEST",
    "CONTEXT_LENGTH_EXCEEDED",
    "UNSUPPORTED_LANGUAGE",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "MODEL_NOT_FOUND",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "NOT_ACCEPTABLE",
    "REQUEST_TIMEOUT",
    "MODEL_NOT_LOADED",
    "MODEL_BUSY",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "REFACTOR_NOT_APPLICABLE",
    "RATE_LIMIT_EXCEEDED",
    "HEADERS_TOO_LARGE",
    "REQUEST_CANCELLED",
    "INTERNAL_ERROR",
    "INFERENCE_FAILED",
    "MODEL_CRASHED",
    "MODEL_LOADING",
    "MODEL_LOAD_FAILED",
    "QUEUE_FULL",
    "SERVICE_UNAVAILABLE",
    "INFERENCE_TIMEOUT",
]

# code -> the HTTP status it is answered with (the README's error table).
ERROR_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 422,
    "BAD_REQUEST": 400,
    "INVALID_REQUEST": 400,
    "CONTEXT_LENGTH_EXCEEDED": 400,
    "UNSUPPORTED_LANGUAGE": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "MODEL_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "NOT_ACCEPTABLE": 406,
    "REQUEST_TIMEOUT": 408,
    "MODEL_NOT_LOADED": 409,
    "MODEL_BUSY": 409,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "REFACTOR_NOT_APPLICABLE": 422,
    "RATE_LIMIT_EXCEEDED": 429,
    "HEADERS_TOO_LARGE": 431,
    "REQUEST_CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "INFERENCE_FAILED": 500,
    "MODEL_CRASHED": 503,
    "MODEL_LOADING": 503,
    "MODEL_LOAD_FAILED": 503,
    "QUEUE_FULL": 503,
    "SERVICE_UNAVAILABLE": 503,
    "INFERENCE_TIMEOUT": 504,
}
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)
if set(ERROR_STATUS) != set(ERROR_CODES):
    raise RuntimeError("ERROR_STATUS must give a status for exactly the ErrorCode values")

# Statuses a client may retry after a pause (and only these honour Retry-After).
RETRYABLE_STATUSES = frozenset({429, 503})


class ErrorBody(WireModel):
    """The error object inside the envelope."""

    code: str = Field(
        examples=["MODEL_NOT_FOUND"],
        description="One of ErrorCode; clients should treat unknown codes by HTTP status.",
    )
    message: str
    details: dict[str, object] = Field(default_factory=dict)
    timestamp: str = Field(description="RFC 3339, UTC")
    request_id: str


class ErrorEnvelope(WireModel):
    """Every error response has this shape."""

    error: ErrorBody


class JobError(WireModel):
    """Why a job or one model's part failed (the envelope's error fields)."""

    code: str
    message: str
    details: dict[str, object] = Field(default_factory=dict)
