"""The language server's frame loop: bad frames get JSON-RPC errors, never a crash or a hang."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lsp_server.framing import FrameLimits, FrameLoop


class BytesReader:
    """A FrameReader over fixed input (what stdin would deliver)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    async def readline(self) -> bytes:
        end = self._data.find(b"\n", self._pos)
        end = len(self._data) if end < 0 else end + 1
        line, self._pos = self._data[self._pos : end], end
        return line

    async def readexactly(self, n: int) -> bytes:
        chunk, self._pos = self._data[self._pos : self._pos + n], self._pos + n
        return chunk


class Recorder:
    """Stands in for the pygls protocol: records what it is given and what is sent."""

    def __init__(self) -> None:
        self.handled: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    def structure_message(self, data: dict[str, Any]) -> Any:
        if data.get("method") == "textDocument/hover" and not isinstance(data.get("params"), dict):
            raise TypeError("params must be an object")
        return data

    def handle_message(self, message: Any) -> None:
        self.handled.append(message)

    def _send_data(self, data: Any) -> None:
        self.sent.append(data)


def frame(message: dict[str, Any] | bytes, length: int | str | None = None) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    declared = len(body) if length is None else length
    return f"Content-Length: {declared}\r\n\r\n".encode() + body


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
PING = {"jsonrpc": "2.0", "id": 7, "method": "workspace/executeCommand", "params": {}}


async def serve(data: bytes, **limits: int) -> tuple[Recorder, FrameLoop]:
    recorder = Recorder()
    loop = FrameLoop(BytesReader(data), recorder, limits=FrameLimits(**limits))
    await loop.run()
    return recorder, loop


def error_codes(recorder: Recorder) -> list[tuple[object, int]]:
    return [(m["id"], m["error"]["code"]) for m in recorder.sent]


async def test_well_formed_frames_pass_through() -> None:
    recorder, _ = await serve(frame(INIT) + frame(PING))
    assert [m["id"] for m in recorder.handled] == [1, 7]
    assert recorder.sent == []


async def test_requests_before_initialize_get_32002_and_run_nothing() -> None:
    recorder, _ = await serve(frame(PING) + frame(INIT))
    assert error_codes(recorder) == [(7, -32002)]
    assert [m["id"] for m in recorder.handled] == [1]


async def test_a_second_initialize_is_refused() -> None:
    again = {**INIT, "id": 2}
    recorder, _ = await serve(frame(INIT) + frame(again))
    assert error_codes(recorder) == [(2, -32600)]


@pytest.mark.parametrize("declared", ["abc", "-5", "99999999999999999999x"])
async def test_a_bad_length_is_answered_and_the_stream_resyncs(declared: str) -> None:
    data = frame(INIT) + frame(b'{"jsonrpc": "2.0"}', declared) + frame(PING)
    recorder, _ = await serve(data)
    assert error_codes(recorder) == [(None, -32600)]
    assert [m["id"] for m in recorder.handled] == [1, 7]


async def test_a_missing_length_is_answered_and_the_stream_resyncs() -> None:
    data = frame(INIT) + b"Content-Type: x\r\n\r\n{}" + frame(PING)
    recorder, _ = await serve(data)
    assert error_codes(recorder) == [(None, -32600)]
    assert [m["id"] for m in recorder.handled] == [1, 7]


async def test_an_absurd_length_is_refused_without_allocating() -> None:
    data = frame(INIT) + b"Content-Length: 99999999999\r\n\r\n{" + frame(PING)
    recorder, _ = await serve(data)
    assert error_codes(recorder) == [(None, -32600)]
    assert [m["id"] for m in recorder.handled] == [1, 7]


async def test_an_oversized_body_is_discarded_and_the_next_one_served() -> None:
    big = {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"x": "y" * 5000}}
    recorder, _ = await serve(frame(INIT) + frame(big) + frame(PING), max_body_bytes=1000)
    assert error_codes(recorder) == [(None, -32600)]
    assert "discarded" in recorder.sent[0]["error"]["message"]
    assert [m["id"] for m in recorder.handled] == [1, 7]


async def test_malformed_requests_with_an_id_get_an_error_response() -> None:
    bad_params = {"jsonrpc": "2.0", "id": 3, "method": "textDocument/hover", "params": [1]}
    object_id = {"jsonrpc": "2.0", "id": {"a": 1}, "method": "shutdown"}
    no_method = {"jsonrpc": "2.0", "id": 4}
    data = (
        frame(INIT)
        + frame(b"{not json")
        + frame(bad_params)
        + frame(object_id)
        + frame(no_method)
        + frame(b"[1, 2]")
    )
    recorder, _ = await serve(data)
    assert error_codes(recorder) == [
        (None, -32700),
        (3, -32602),
        (None, -32600),
        (4, -32600),
        (None, -32600),
    ]
    assert [m["id"] for m in recorder.handled] == [1]


async def test_exit_ends_the_loop_without_reaching_pygls() -> None:
    exit_note = {"jsonrpc": "2.0", "method": "exit"}
    recorder, loop = await serve(frame(INIT) + frame(exit_note) + frame(PING))
    assert loop.exit_requested
    assert [m["id"] for m in recorder.handled] == [1]
