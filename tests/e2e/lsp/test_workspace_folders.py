"""The editor's workspace folders reach completion context through the real language server.

The language server runs in this process (``serve_lsp`` over pipes, spoken
to as an editor speaks); the tests read the engine's own state: a definition
from a workspace file that is not open is offered after ``initialize`` names
the folder, and no longer once ``workspace/didChangeWorkspaceFolders``
removes it; opening another file warms the last completion place's context.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.completion.pipeline import CompletionRequest
from engine.engine import Engine
from lsp_server import runner
from services.composition import Services
from tests.conftest import make_settings
from tests.support.frame_client import FrameClient

GEOMETRY = 'def area_of_circle(radius):\n    """Area."""\n    return 3.14159 * radius**2\n'
MAIN = "from geometry import area_of_circle\n\n\ndef report(r):\n    return area_of_circle("


def definitions(engine: Engine, uri: str, code: str) -> list[str]:
    request = CompletionRequest(code=code, cursor=len(code), language="python")
    context = engine.documents.completion_context(uri, request)
    assert context is not None
    return [snippet.text for snippet in context.definitions]


@asynccontextmanager
async def language_server(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    initialize: dict[str, Any],
) -> AsyncIterator[tuple[FrameClient, list[Services]]]:
    """``serve_lsp`` in this process, initialized; yields its client and the Services it built."""
    built: list[Services] = []

    class Recorded(Services):
        def __init__(self, engine: Engine, *args: Any, **kwargs: Any) -> None:
            super().__init__(engine, *args, **kwargs)
            self.engine = engine
            built.append(self)

    monkeypatch.setattr(runner, "Services", Recorded)
    settings = make_settings(tmp_path / "data", tiny_models)
    server_in_r, server_in_w = os.pipe()
    server_out_r, server_out_w = os.pipe()
    client = FrameClient(os.fdopen(server_in_w, "wb"), os.fdopen(server_out_r, "rb"))
    serving = asyncio.create_task(
        runner.serve_lsp(
            settings,
            http=False,
            stdin=os.fdopen(server_in_r, "rb", buffering=0),
            stdout=os.fdopen(server_out_w, "wb", buffering=0),
        )
    )
    try:
        await client.request("initialize", initialize)
        client.notify("initialized", {})
        yield client, built
    finally:
        await client.request("shutdown", {})
        client.close()
        await asyncio.wait_for(serving, timeout=60)


def open_document(client: FrameClient, uri: str, text: str) -> None:
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )


async def open_and_complete(
    client: FrameClient, built: list[Services], uri: str, text: str
) -> Engine:
    """Open ``uri``, ask for an inline completion at its end; the server's engine."""
    open_document(client, uri, text)
    lines = text.split("\n")
    response = await client.request(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": len(lines) - 1, "character": len(lines[-1])},
            "context": {"triggerKind": 1},
        },
    )
    assert "error" not in response, response
    (services,) = built
    engine: Engine = services.engine  # type: ignore[attr-defined]
    return engine


async def test_workspace_folders_feed_the_context(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "geometry.py").write_text(GEOMETRY)
    (project / "main.py").write_text(MAIN)
    folder_uri = project.as_uri()
    main_uri = (project / "main.py").as_uri()
    initialize = {
        "processId": None,
        "rootUri": folder_uri,
        "workspaceFolders": [{"uri": folder_uri, "name": "project"}],
        "capabilities": {"workspace": {"workspaceFolders": True}},
        "initializationOptions": {"model": "tiny-starcoder", "maxTokens": 4},
    }
    async with language_server(tmp_path, tiny_models, monkeypatch, initialize) as (client, built):
        engine = await open_and_complete(client, built, main_uri, MAIN)
        # geometry.py is not open: its definition comes from the workspace folder.
        found = await asyncio.to_thread(definitions, engine, main_uri, MAIN)
        assert any("def area_of_circle(radius)" in text for text in found), found

        client.notify(
            "workspace/didChangeWorkspaceFolders",
            {"event": {"added": [], "removed": [{"uri": folder_uri, "name": "project"}]}},
        )
        # Notifications are handled in order: a request after it sees its effect.
        await client.request("workspace/executeCommand", {"command": "ai-ide.showStatus"})
        gone = await asyncio.to_thread(definitions, engine, main_uri, MAIN)
        assert not any("area_of_circle(radius)" in text for text in gone), gone


async def test_opening_another_file_warms_the_last_completion_place(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The editor completes in main.py, then opens shapes.py: its top joins the
    # ring of recent chunks, and main.py's prompt with it is read ahead.
    main_uri, shapes_uri = "file:///p/main.py", "file:///p/shapes.py"
    shapes = "".join(f"class Shape{i}:\n    sides = {i}\n\n" for i in range(12))
    initialize = {
        "processId": None,
        "capabilities": {},
        "initializationOptions": {"model": "tiny-starcoder", "maxTokens": 4},
    }
    async with language_server(tmp_path, tiny_models, monkeypatch, initialize) as (client, built):
        engine = await open_and_complete(client, built, main_uri, MAIN)
        assert engine.warmer.counts.scheduled == 0
        open_document(client, shapes_uri, shapes)
        await client.request("workspace/executeCommand", {"command": "ai-ide.showStatus"})
        assert engine.warmer.counts.scheduled == 1
        for _ in range(300):
            if engine.warmer.counts.done:
                break
            await asyncio.sleep(0.05)
        assert engine.warmer.counts.done == 1
