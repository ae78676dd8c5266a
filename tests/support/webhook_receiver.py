"""A real webhook receiver on a loopback port: records every delivery, answers as told.

Each delivery is kept with both of its signatures checked the way the README
tells receivers to, and as it was sent (headers and body).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it, with its own signature checks."""

    path: str
    webhook_id: str
    webhook_timestamp: str
    payload: dict[str, Any]
    body_signature_ok: bool
    header_signature_ok: bool
    # The request as sent, for receivers' own verifiers (the SDKs').
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


def verify(secret: str, headers: Message, body: bytes) -> tuple[bool, bool]:
    """Both signatures, checked the way the README tells receivers to."""
    key = secret.encode()
    payload = json.loads(body)
    unsigned = {k: payload[k] for k in ("event_type", "timestamp", "data")}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected_body = "sha256=" + hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
    body_ok = set(payload) == {"event_type", "timestamp", "data", "signature"} and (
        hmac.compare_digest(expected_body, payload["signature"])
    )
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    header_ok = abs(time.time() - int(stamp)) < 300 and any(
        hmac.compare_digest(part.removeprefix("v1,"), expected)
        for part in headers["webhook-signature"].split()
        if part.startswith("v1,")
    )
    return body_ok, header_ok


class Receiver:
    """A threaded HTTP server that records deliveries and answers as told.

    Modes: ok (200), fail (500), gone (410), ratelimit (429 + Retry-After),
    redirect (302 to another local path), hang (never answers), trickle (200
    headers, then one body byte every 0.2 s).
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.mode = "ok"
        self.retry_after = "1"
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.record(self.path, self.headers, body)
                mode = receiver.mode
                if mode == "hang":
                    self.close_connection = True
                    receiver.release.wait(30)
                    return
                if mode == "trickle":
                    self.close_connection = True
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    for _ in range(1000):
                        if receiver.release.wait(0.2):
                            return
                        with contextlib.suppress(OSError):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                    return
                status = {"ok": 200, "fail": 500, "gone": 410, "ratelimit": 429}.get(mode, 302)
                self.send_response(status)
                if mode == "ratelimit":
                    self.send_header("Retry-After", receiver.retry_after)
                if mode == "redirect":
                    self.send_header("Location", f"{receiver.url}/redirected")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, path: str, headers: Message, body: bytes) -> None:
        body_ok, header_ok = verify(self.secret, headers, body)
        with self._lock:
            self.requests.append(
                Received(
                    path=path,
                    webhook_id=headers["webhook-id"],
                    webhook_timestamp=headers["webhook-timestamp"],
                    payload=json.loads(body),
                    body_signature_ok=body_ok,
                    header_signature_ok=header_ok,
                    headers=dict(headers.items()),
                    body=body,
                )
            )

    def seen(self, path: str | None = None) -> list[Received]:
        """Every delivery so far (to ``path`` only, when given)."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        """The ``data`` of every delivery of one event type."""
        return [r.payload["data"] for r in self.seen() if r.payload["event_type"] == event_type]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
