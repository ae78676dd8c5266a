"""ASGI middleware: request ids, size limits, a body deadline and JSON checks.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so streaming responses and
client disconnects pass through untouched.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

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
    """Assign a request id; enforce header and body limits; refuse ambiguous JSON."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_header_bytes: int = 16384,
        *,
        max_json_depth: int = 64,
        body_timeout_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_headers = max_header_bytes
        self.max_depth = max_json_depth
        self.body_timeout = body_timeout_seconds

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

        # The whole body is read here, before authentication, rate limits and
        # routing: a client trickling bytes runs into the deadline, not into a
        # concurrency slot, and the JSON is checked once for every route.
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.body_timeout)
        except TimeoutError:
            await _send_error(
                send,
                408,
                "REQUEST_TIMEOUT",
                f"The request body did not arrive within {self.body_timeout:g} s",
                request_id,
            )
            return
        except _BodyTooLarge:
            await _send_error(
                send,
                413,
                "PAYLOAD_TOO_LARGE",
                f"Request body exceeds {self.max_body} bytes",
                request_id,
            )
            return
        except _Disconnected:
            return
        problem = None
        if body.strip():
            problem = _media_type_problem(headers.get(b"content-type")) or json_problem(
                body, self.max_depth
            )
        if problem is not None:
            await _send_error(send, 400, "BAD_REQUEST", problem, request_id)
            return
        if body.strip() and b"content-type" not in headers:
            # A body without a type is read as the JSON it was just found to be
            # (FastAPI would take it for no body at all).
            typed = [*scope["headers"], (b"content-type", b"application/json")]
            scope = {**scope, "headers": typed}

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect comes

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                if not any(k.lower() == REQUEST_ID_HEADER.lower().encode() for k, _ in raw):
                    raw.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, replay_receive, send_with_id)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _BodyTooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class _DuplicateKey(ValueError):
    pass


class _NotJsonConstant(ValueError):
    pass


def _no_constants(name: str) -> Any:
    # Python's decoder takes NaN and Infinity, which JSON does not have.
    raise _NotJsonConstant(name)


def _media_type_problem(content_type: bytes | None) -> str | None:
    """Why a body sent with this Content-Type is not taken as JSON (None: it is).

    Every route takes JSON; a body without a Content-Type is read as JSON too
    (see the caller).
    """
    if content_type is None:
        return None
    media = content_type.split(b";", 1)[0].strip().lower()
    if media in (b"", b"application/json") or media.endswith(b"+json"):
        return None
    shown = media.decode("latin-1")[:80]
    return f"The request body must be JSON (Content-Type: application/json), not {shown}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (iteratively)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_problem(body: bytes, max_depth: int) -> str | None:
    """Why a request body is not acceptable JSON, or None when it is.

    A key given twice is refused, since which of the two values counts is
    ambiguous. Nesting beyond what the decoder can recurse into is refused as
    too deep, like nesting beyond ``max_depth``.
    """
    too_deep = f"JSON nested deeper than {max_depth} levels"
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _DuplicateKey as exc:
        return f"The JSON object has the key '{exc}' more than once"
    except _NotJsonConstant as exc:
        return f"The request body is not valid JSON: {exc} is not a JSON value"
    except RecursionError:
        return too_deep
    except ValueError:
        return "The request body is not valid JSON"
    if json_depth(value) > max_depth:
        return too_deep
    return None
