"""An editor's keystroke never writes to SQLite on the event loop.

The language server runs in this process (``serve_lsp`` over pipes) so the
test can read the store's own counters; the client speaks JSON-RPC frames
as an editor does. Metrics of the keystrokes still arrive, written in a batch
by the metrics writer thread.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from lsp_server import runner
from services.composition import Services
from tests.conftest import make_settings
from tests.support.frame_client import FrameClient

URI = "file:///project/shapes.py"
CODE = "def square(side):\n    return side * side\n\n\ndef cube(side):\n    return "


@pytest.fixture
def lsp_settings(tmp_path: Path, tiny_models: dict[str, Path]) -> Settings:
    return make_settings(tmp_path / "data", tiny_models)


async def test_keystrokes_write_nothing_on_the_event_loop(
    lsp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Services] = []

    class Recorded(Services):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(runner, "Services", Recorded)
    server_in_r, server_in_w = os.pipe()
    server_out_r, server_out_w = os.pipe()
    stdin = os.fdopen(server_in_r, "rb", buffering=0)
    stdout = os.fdopen(server_out_w, "wb", buffering=0)
    client = FrameClient(os.fdopen(server_in_w, "wb"), os.fdopen(server_out_r, "rb"))
    serving = asyncio.create_task(
        runner.serve_lsp(lsp_settings, http=False, stdin=stdin, stdout=stdout)
    )
    try:
        await client.request(
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": {},
                "initializationOptions": {"model": "tiny-starcoder", "maxTokens": 8},
            },
        )
        client.notify("initialized", {})
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": CODE}},
        )
        (services,) = built
        store = services.store
        lines = CODE.split("\n")
        line, column = len(lines) - 1, len(lines[-1])
        typed = ""
        before = store.counters.transactions_on_event_loop
        for version, char in enumerate("side", start=2):
            typed += char
            client.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": URI, "version": version},
                    "contentChanges": [
                        {
                            "range": {
                                "start": {"line": line, "character": column + len(typed) - 1},
                                "end": {"line": line, "character": column + len(typed) - 1},
                            },
                            "text": char,
                        }
                    ],
                },
            )
            response = await client.request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": URI},
                    "position": {"line": line, "character": column + len(typed)},
                    "context": {"triggerKind": 2},
                },
            )
            assert "error" not in response, response
        assert store.counters.transactions_on_event_loop == before
        # The keystrokes were measured all the same: the writer thread stores them.
        recorded = 0
        for _ in range(200):
            totals = await asyncio.to_thread(services.metrics.totals)
            recorded = sum(t.successes + t.failures + t.cache_hits for t in totals)
            if recorded:
                break
            await asyncio.sleep(0.05)
        assert recorded >= 1
        assert store.counters.transactions > 0
    finally:
        await client.request("shutdown", {})
        client.close()  # `exit` would end this process: EOF ends the server instead
        await asyncio.wait_for(serving, timeout=60)
