"""The editor's workspace folders reach completion context through the real language server.

The language server runs in this process (``serve_lsp`` over pipes, spoken
to as an editor speaks); the test reads the engine's own completion context
for the open document: a definition from a workspace file that is not open
is offered after ``initialize`` names the folder, and no longer once
``workspace/didChangeWorkspaceFolders`` removes it.
"""

from __future__ import annotations

import asyncio
import os
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


async def test_workspace_folders_feed_the_context(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "geometry.py").write_text(GEOMETRY)
    (project / "main.py").write_text(MAIN)
    folder_uri = project.as_uri()
    main_uri = (project / "main.py").as_uri()

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
        await client.request(
            "initialize",
            {
                "processId": None,
                "rootUri": folder_uri,
                "workspaceFolders": [{"uri": folder_uri, "name": "project"}],
                "capabilities": {"workspace": {"workspaceFolders": True}},
                "initializationOptions": {"model": "tiny-starcoder", "maxTokens": 4},
            },
        )
        client.notify("initialized", {})
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": main_uri, "languageId": "python", "version": 1, "text": MAIN}},
        )
        lines = MAIN.split("\n")
        response = await client.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": main_uri},
                "position": {"line": len(lines) - 1, "character": len(lines[-1])},
                "context": {"triggerKind": 1},
            },
        )
        assert "error" not in response, response
        (services,) = built
        engine = services.engine  # type: ignore[attr-defined]
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
    finally:
        await client.request("shutdown", {})
        client.close()
        await asyncio.wait_for(serving, timeout=60)
