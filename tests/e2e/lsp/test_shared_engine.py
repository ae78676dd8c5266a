"""One engine for many editors: a second ``ai-ide lsp`` uses the running server's engine."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from services.keys import INITIAL_KEY_FILE

URI = "file:///project/geometry.py"
CODE = "def circle_area(radius):\n    return "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def shared_server(lsp_config_file: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """``ai-ide serve`` on a free port, with its own data directory."""
    port = free_port()
    data = tmp_path / "shared-data"
    config = tmp_path / "shared.toml"
    # The test config with a private data directory (its first line).
    lines = lsp_config_file.read_text(encoding="utf-8").splitlines()
    config.write_text("\n".join([f'data_dir = "{data}"', *lines[1:]]), encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lsp_server.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/ai/health", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None:
                    raise AssertionError("ai-ide serve exited") from None
                time.sleep(0.1)
        yield port, config
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_second_language_server_shares_the_running_engine(
    shared_server: tuple[int, Path],
) -> None:
    port, config = shared_server
    data_dir = Path(config.read_text().splitlines()[0].split('"')[1])
    key = (data_dir / INITIAL_KEY_FILE).read_text().strip()
    base = f"http://127.0.0.1:{port}/v1/ai"

    client_config = ClientServerConfig(
        server_command=[
            sys.executable,
            "-m",
            "lsp_server.cli",
            "lsp",
            "--config",
            str(config),
            "--http-port",
            str(port),
        ]
    )
    client = await client_config.start()
    assert isinstance(client, LanguageClient)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                initialization_options={"model": "tiny-starcoder", "maxTokens": 24},
            )
        )
        report = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ai-ide.showStatus", arguments=[])
        )
        assert report["backend"] == f"shared server http://127.0.0.1:{port}"
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=URI, language_id="python", version=1, text=CODE
                )
            )
        )
        lines = CODE.split("\n")
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=types.Position(line=len(lines) - 1, character=len(lines[-1])),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
        assert isinstance(result, types.InlineCompletionList) and result.items
        via_editor = result.items[0].insert_text
    finally:
        await client.shutdown_session()
        await client.stop()

    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=60) as http:
        direct = await http.post(
            "/inference/completion",
            json={
                "model_id": "tiny-starcoder",
                "context": {"language": "python", "code": CODE, "file_path": URI},
                "parameters": {"max_tokens": 24, "temperature": 0.0, "top_p": 1.0},
            },
        )
        assert direct.status_code == 200, direct.text
        # Same model, same greedy answer: the editor's completion ran on the shared engine.
        assert via_editor == direct.json()["completion"]["text"]
        metrics = (await http.get("/monitoring/models/tiny-starcoder/metrics")).json()
        assert metrics["metrics"]["inference_count"] >= 2
        models = (await http.get("/models")).json()["models"]
        assert sum(1 for m in models if m["status"] == "loaded") == 1
