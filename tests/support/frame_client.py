"""A raw JSON-RPC client for a language server on a pair of pipes, as an editor speaks it."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, BinaryIO


class FrameClient:
    """Writes requests to the server's stdin and collects its messages from stdout."""

    def __init__(self, to_server: BinaryIO, from_server: BinaryIO) -> None:
        self._out = to_server
        self._in = from_server
        self._next_id = 0
        self._responses: dict[int, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            length = 0
            while True:
                line = self._in.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(self._in.read(length))
            if "id" in message and "method" not in message:
                with self._arrived:
                    self._responses[int(message["id"])] = message
                    self._arrived.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self._out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self._out.flush()

    def close(self) -> None:
        """End of input for the server, as when the editor goes away."""
        self._out.close()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        self.send({"id": request_id, "method": method, "params": params})

        def wait() -> dict[str, Any]:
            with self._arrived:
                if not self._arrived.wait_for(lambda: request_id in self._responses, 120):
                    raise TimeoutError(f"no response to {method}")
                return self._responses.pop(request_id)

        return await asyncio.to_thread(wait)
