"""The language server's message loop: LSP base-protocol frames read defensively.

pygls's own loop trusts its input: a ``Content-Length`` of 99999999999 makes
it allocate (MemoryError, and the server exits), a malformed header leaves
it out of sync for good, and a request it cannot convert gets no response
at all, so the client waits on that id forever. This loop:

- caps header lines and bodies (an oversized body gets a JSON-RPC error and
  is discarded in chunks, never held in memory);
- resynchronises after a broken header on the next ``Content-Length`` line,
  and closes the stream cleanly when it cannot;
- answers every malformed request that has an id with a JSON-RPC error
  (-32700 parse error, -32600 invalid request, -32602 invalid params), and
  requests before ``initialize`` with -32002;
- ends on ``exit`` or end of input instead of letting pygls call
  ``sys.exit`` from inside a callback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002

_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\S*)\s*$", re.IGNORECASE)
_RESYNC = re.compile(rb"Content-Length:\s*\d+\s*$", re.IGNORECASE)
_MAX_HEADER_LINE = 8 * 1024
_MAX_HEADER_LINES = 32
_DISCARD_CHUNK = 1 << 20


class FrameReader(Protocol):
    """What the loop reads from (pygls's StdinAsyncReader fits)."""

    def readline(self) -> Awaitable[bytes]:
        """One line, with its newline; b"" at end of input."""

    def readexactly(self, n: int) -> Awaitable[bytes]:
        """Up to ``n`` bytes; fewer only at end of input."""


class MessageSink(Protocol):
    """Where well-formed messages go, and how errors are answered (the pygls protocol)."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Convert a raw JSON-RPC object into a typed message (raises if it cannot)."""

    def handle_message(self, message: Any) -> None:
        """Dispatch one typed message."""

    def _send_data(self, data: Any) -> None:
        """Write one JSON-RPC object to the client."""


@dataclass
class FrameLimits:
    """Bounds on what one frame may hold."""

    max_body_bytes: int = 64 * 2**20
    # A declared length past this is not a real message: look for the next
    # frame instead of swallowing that many bytes.
    bogus_body_bytes: int = 2**30


def _valid_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class FrameLoop:
    """Reads frames from ``reader`` and feeds ``protocol`` until exit or end of input."""

    def __init__(
        self,
        reader: FrameReader,
        protocol: MessageSink,
        *,
        limits: FrameLimits | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._reader = reader
        self._protocol = protocol
        self._limits = limits or FrameLimits()
        self._stop = stop
        self._pending_header: bytes | None = None
        self.initialized = False
        self.exit_requested = False

    # -- replies -----------------------------------------------------------------

    def _error(self, msg_id: object, code: int, message: str) -> None:
        self._protocol._send_data(
            {
                "jsonrpc": "2.0",
                "id": msg_id if _valid_id(msg_id) else None,
                "error": {"code": code, "message": message},
            }
        )

    # -- reading -----------------------------------------------------------------

    async def _line(self) -> bytes:
        if self._pending_header is not None:
            line, self._pending_header = self._pending_header, None
            return line
        return await self._reader.readline()

    async def _headers(self) -> int | None:
        """The body length of the next frame; None at end of input (or unrecoverable)."""
        length: int | None = None
        broken: str | None = None
        for _ in range(_MAX_HEADER_LINES):
            line = await self._line()
            if not line:
                return None
            if len(line) > _MAX_HEADER_LINE:
                broken = "a header line is too long"
                continue
            if line in (b"\r\n", b"\n"):
                if length is not None and broken is None:
                    return length
                # A header block that names no usable length: its body (of
                # unknown size) follows. Resynchronise on the next header.
                self._error(None, INVALID_REQUEST, broken or "Content-Length header missing")
                return await self._resync()
            match = _CONTENT_LENGTH.match(line.strip(b"\r\n") + b"\r\n")
            if match is None:
                continue  # Content-Type and unknown headers are ignored
            value = match.group(1)
            if not value.isdigit():
                broken = f"invalid Content-Length {value[:32]!r}"
            else:
                length = int(value)
        self._error(None, INVALID_REQUEST, "too many header lines")
        return await self._resync()

    async def _resync(self) -> int | None:
        """Skip input until a line that ends in a Content-Length header; then read on."""
        while True:
            line = await self._reader.readline()
            if not line:
                return None
            found = _RESYNC.search(line)
            if found is not None:
                self._pending_header = line[found.start() :]
                return await self._headers()

    async def _discard(self, length: int) -> bool:
        """Read and drop ``length`` bytes; False at end of input."""
        remaining = length
        while remaining > 0:
            chunk = await self._reader.readexactly(min(remaining, _DISCARD_CHUNK))
            if not chunk:
                return False
            remaining -= len(chunk)
        return True

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Serve until ``exit``, end of input, or ``stop()`` says so."""
        while not self._stop() and not self.exit_requested:
            length = await self._headers()
            if length is None:
                return
            if length > self._limits.bogus_body_bytes:
                self._error(None, INVALID_REQUEST, f"message of {length} bytes refused")
                if await self._resync_after_bogus() is False:
                    return
                continue
            if length > self._limits.max_body_bytes:
                self._error(
                    None,
                    INVALID_REQUEST,
                    f"message of {length} bytes is over the limit of "
                    f"{self._limits.max_body_bytes}; discarded",
                )
                if not await self._discard(length):
                    return
                continue
            body = await self._reader.readexactly(length)
            if len(body) < length:
                return
            self._handle(body)

    async def _resync_after_bogus(self) -> bool:
        """After an absurd length: drop input up to the next frame header."""
        length = await self._resync()
        if length is None:
            return False
        body = await self._reader.readexactly(min(length, self._limits.max_body_bytes))
        if length <= self._limits.max_body_bytes and len(body) == length:
            self._handle(body)
        return True

    def _handle(self, body: bytes) -> None:
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError):
            self._error(None, PARSE_ERROR, "the message is not valid JSON")
            return
        if not isinstance(raw, dict):
            self._error(None, INVALID_REQUEST, "a JSON-RPC message is an object")
            return
        msg_id = raw.get("id")
        method = raw.get("method")
        is_request = "id" in raw and method is not None
        if "id" in raw and not _valid_id(msg_id) and msg_id is not None:
            self._error(None, INVALID_REQUEST, "the id must be a string or an integer")
            return
        if method is not None and not isinstance(method, str):
            self._error(msg_id, INVALID_REQUEST, "the method must be a string")
            return
        if method is None and "result" not in raw and "error" not in raw:
            self._error(msg_id, INVALID_REQUEST, "the message has no method")
            return
        if method == "exit":
            self.exit_requested = True
            return
        if method == "initialize":
            if self.initialized:
                self._error(msg_id, INVALID_REQUEST, "the server is already initialized")
                return
        elif method is not None and not self.initialized:
            if is_request:
                self._error(msg_id, SERVER_NOT_INITIALIZED, "the server is not initialized yet")
            return  # notifications before initialize are dropped, as the protocol says
        try:
            message = self._protocol.structure_message(raw)
        except Exception as exc:
            log.debug("malformed %s message: %s", method, exc)
            if is_request:
                self._error(msg_id, INVALID_PARAMS, f"invalid params for {method}: {exc}")
            return
        if method == "initialize":
            self.initialized = True
        try:
            self._protocol.handle_message(message)
        except Exception:
            log.exception("handling %s failed", method)
            if is_request:
                self._error(msg_id, -32603, f"internal error in {method}")
