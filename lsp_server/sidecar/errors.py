"""One error envelope for every failure the REST API reports.

``{"error": {"code", "message", "details", "timestamp", "request_id"}}`` with
the request id also in the ``X-Request-ID`` header. Engine errors map through
their ``code``/``http_status``; validation errors name the field; anything
unexpected is a 500 without a stack trace.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import EngineError, ModelLoadingError

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def now_rfc3339() -> str:
    """Current UTC time as RFC 3339 with a ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_request_id() -> str:
    """A fresh request id."""
    return f"req_{secrets.token_hex(8)}"


def request_id_of(request: Request) -> str:
    """The id assigned to this request by the middleware."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else new_request_id()


def error_fields(
    code: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The envelope's ``error`` object."""
    return {
        "code": code,
        "message": message,
        "details": details or {},
        "timestamp": now_rfc3339(),
        "request_id": request_id,
    }


def error_object(exc: EngineError, request_id: str) -> dict[str, Any]:
    """The envelope's ``error`` object for an engine error (streams, batch items)."""
    return error_fields(exc.code, exc.message, request_id, exc.details)


def envelope(
    status: int,
    code: str,
    message: str,
    request_id: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build an error response in the documented shape."""
    body = {"error": error_fields(code, message, request_id, details)}
    all_headers = {REQUEST_ID_HEADER: request_id, **(headers or {})}
    return JSONResponse(body, status_code=status, headers=all_headers)


def engine_error_response(exc: EngineError, request_id: str) -> JSONResponse:
    """Map an engine error to its envelope, with Retry-After where it helps."""
    headers: dict[str, str] = {}
    if isinstance(exc, ModelLoadingError):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    elif exc.http_status == 503:
        headers["Retry-After"] = "1"
    return envelope(exc.http_status, exc.code, exc.message, request_id, exc.details, headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) if parts else "body"


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception type through the envelope."""

    @app.exception_handler(EngineError)
    async def _engine(request: Request, exc: EngineError) -> JSONResponse:
        return engine_error_response(exc, request_id_of(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        fields = [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
            for e in errors[:20]
        ]
        first = fields[0] if fields else {"field": "body", "message": "invalid request"}
        return envelope(
            422,
            "VALIDATION_ERROR",
            f"Invalid field '{first['field']}': {first['message']}",
            request_id_of(request),
            {"field": first["field"], "errors": fields},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route for {request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        return envelope(exc.status_code, code, message, request_id_of(request), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return envelope(500, "INTERNAL_ERROR", "Internal server error", request_id_of(request))
