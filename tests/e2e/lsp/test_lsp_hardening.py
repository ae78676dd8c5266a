"""The real language server against bad frames and a vanishing editor.

``ai-ide lsp`` runs as a subprocess; the test writes raw bytes to its stdin
as a broken or hostile client would and reads its stdout frames.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import lsp_server_command


def frame(message: dict[str, Any] | bytes, length: int | str | None = None) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    declared = len(body) if length is None else length
    return f"Content-Length: {declared}\r\n\r\n".encode() + body


class RawClient:
    """A subprocess language server and the JSON-RPC objects it writes."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            lsp_server_command(config, "--no-http"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.process.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(out.read(length))
            with self._arrived:
                self.messages.append(message)
                self._arrived.notify_all()

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def response(self, msg_id: object, seconds: float = 120) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for m in self.messages:
                if m.get("id") == msg_id and "method" not in m:
                    return m
            return None

        with self._arrived:
            self._arrived.wait_for(lambda: found() is not None, seconds)
            message = found()
        assert message is not None, f"no response to id {msg_id!r}"
        return message

    def errors_without_id(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("id") is None and "error" in m]


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "processId": None,
        "rootUri": None,
        "capabilities": {},
        "initializationOptions": {"model": "tiny-starcoder"},
    },
}


def test_bad_frames_are_answered_and_the_server_keeps_serving(lsp_config_file: Path) -> None:
    client = RawClient(lsp_config_file)
    try:
        early = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "workspace/executeCommand",
            "params": {"command": "ai-ide.loadModel", "arguments": ["tiny-qwen"]},
        }
        client.write(frame(early))
        assert client.response(2)["error"]["code"] == -32002
        # Each broken frame is answered, and the request after it still is.
        client.write(b"Content-Length: 99999999999\r\n\r\n{")
        client.write(frame(INIT))
        assert "result" in client.response(1)
        for index, declared in enumerate(("abc", "-5")):
            client.write(frame(b"{}", declared))
            ping = {
                "jsonrpc": "2.0",
                "id": 20 + index,
                "method": "textDocument/selectionRange",
                "params": {"textDocument": {"uri": "file:///x.py"}, "positions": []},
            }
            client.write(frame(ping))
            client.response(20 + index)
        assert len(client.errors_without_id()) == 3  # one per broken frame
        wrong = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "textDocument/selectionRange",
            "params": {"textDocument": 5, "positions": "x"},
        }
        client.write(frame(wrong))
        assert client.response(3)["error"]["code"] == -32602
        client.write(frame({**INIT, "id": 4}))
        assert client.response(4)["error"]["code"] == -32600
        shutdown = {"jsonrpc": "2.0", "id": 5, "method": "shutdown"}
        client.write(frame(shutdown))
        assert "error" not in client.response(5)
    finally:
        client.process.kill()
        client.process.wait()


def test_the_server_ends_with_its_editor_whatever_is_queued(lsp_config_file: Path) -> None:
    client = RawClient(lsp_config_file)
    client.write(frame(INIT))
    client.response(1)
    # `initialized` starts the editor's model load; two more are queued behind it.
    client.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    for index, model in enumerate(("tiny-qwen", "tiny-deepseek")):
        command = {
            "jsonrpc": "2.0",
            "id": 10 + index,
            "method": "workspace/executeCommand",
            "params": {"command": "ai-ide.loadModel", "arguments": [model]},
        }
        client.write(frame(command))
    assert client.process.stdin is not None
    closed = time.monotonic()
    client.process.stdin.close()  # the editor went away
    try:
        code = client.process.wait(timeout=30)
    finally:
        client.process.kill()
    print(f"exited {time.monotonic() - closed:.2f} s after end of input")
    assert code == 0
