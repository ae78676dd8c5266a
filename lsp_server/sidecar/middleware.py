"""ASGI middleware: request ids and request-size limits.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so streaming responses and
client disconnects pass through untouched.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lsp_server.sidecar.errors import REQUEST_ID_HEADER, error_fields, new_request_id

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


async def _send_error(send: Send, status: int, code: str, message: str, request_id: str) -> None:
    body = json.dumps({"error": error_fields(code, message, request_id)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Assign a request id, enforce body and header size limits."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_header_bytes: int = 16384) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_headers = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        request_id = supplied if _CLIENT_ID.match(supplied) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        header_bytes = sum(len(k) + len(v) for k, v in scope.get("headers") or [])
        if header_bytes > self.max_headers:
            await _send_error(
                send, 431, "HEADERS_TOO_LARGE", "Request headers are too large", request_id
            )
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_error(
                    send, 400, "BAD_REQUEST", "Invalid Content-Length header", request_id
                )
                return
            if declared > self.max_body:
                await _send_error(
                    send,
                    413,
                    "PAYLOAD_TOO_LARGE",
                    f"Request body exceeds {self.max_body} bytes",
                    request_id,
                )
                return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    too_large = True
                    # Stop reading: the app sees an empty, final body and the
                    # response below replaces whatever it would have sent.
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if too_large:
                    started = True
                    await _send_error(
                        send,
                        413,
                        "PAYLOAD_TOO_LARGE",
                        f"Request body exceeds {self.max_body} bytes",
                        request_id,
                    )
                    return
                raw = list(message.get("headers", []))
                if not any(k.lower() == REQUEST_ID_HEADER.lower().encode() for k, _ in raw):
                    raw.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": raw}
            elif started and too_large:
                return
            await send(message)

        await self.app(scope, limited_receive, send_with_id)
