"""A webhook receiver on a loopback port that records every delivery and answers 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records every delivery's ``webhook-id`` and payload; answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append((self.headers["webhook-id"], json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def seen(self) -> list[tuple[str, dict[str, Any]]]:
        """Every delivery so far: (webhook-id, payload)."""
        with self._lock:
            return list(self.received)

    def events(self, event_type: str) -> list[dict[str, Any]]:
        """The ``data`` of every delivery of one event type."""
        return [p["data"] for _, p in self.seen() if p["event_type"] == event_type]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver for the duration of the block."""
    instance = Receiver()
    try:
        yield instance
    finally:
        instance.close()
