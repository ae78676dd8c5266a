"""The script commands (complete, generate, refactor, batch) against a real server."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import uvicorn

from engine.config import Settings
from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from services.composition import Services
from services.keys import INITIAL_KEY_FILE


@pytest_asyncio.fixture
async def served(
    engine: Engine, services: Services, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[str, Path]]:
    """A uvicorn server over the engine, and a config file naming its data dir."""
    app = create_app(engine, services, settings)  # no keys yet: writes the first key file
    assert (settings.data_dir / INITIAL_KEY_FILE).exists()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    config = tmp_path / "client.toml"
    config.write_text(f'data_dir = "{settings.data_dir}"\n', encoding="utf-8")
    try:
        yield f"http://127.0.0.1:{port}", config
    finally:
        server.should_exit = True
        await task


async def cli(*args: str, stdin: bytes | None = None) -> tuple[int, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lsp_server.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    assert process.returncode is not None
    try:
        return process.returncode, json.loads(out)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON: {out!r} {err!r}") from exc


async def test_complete_reads_the_key_the_server_wrote(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, config = served
    source = tmp_path / "area.py"
    source.write_text("def area(r):\n    return ", encoding="utf-8")
    status, body = await cli(
        "complete",
        str(source),
        "--url",
        url,
        "--config",
        str(config),
        "--model",
        "tiny-qwen",
        "--max-tokens",
        "6",
    )
    assert status == 0, body
    assert body["completion"]["metadata"]["model_used"] == "tiny-qwen"
    assert body["completion"]["metadata"]["completion_tokens"] > 0


async def test_generate_refactor_and_batch(served: tuple[str, Path], tmp_path: Path) -> None:
    url, config = served
    common = ("--url", url, "--config", str(config))
    status, body = await cli(
        "generate",
        "add two numbers",
        "--language",
        "python",
        "--model",
        "tiny-starcoder",
        "--max-tokens",
        "8",
        *common,
    )
    assert status == 0 and body["generation"]["metadata"]["completion_tokens"] == 8

    rust = tmp_path / "main.rs"
    rust.write_text("fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }\n")
    status, body = await cli(
        "refactor", str(rust), "--operation", "extract_variable", "--model", "tiny-qwen", *common
    )
    assert status == 0, body
    assert "let " in body["refactoring"]["refactored_code"]

    lines = [
        {
            "id": "a",
            "model_id": "tiny-qwen",
            "type": "completion",
            "context": {"code": "x = "},
            "parameters": {"max_tokens": 3},
        },
        {
            "id": "b",
            "model_id": "tiny-deepseek",
            "type": "generation",
            "prompt": "sort a list",
            "parameters": {"max_tokens": 3},
        },
    ]
    batch_file = tmp_path / "requests.jsonl"
    batch_file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    status, body = await cli("batch", str(batch_file), *common)
    assert status == 0, body
    assert body["status"] == "completed"
    assert [r["request_id"] for r in body["results"]] == ["a", "b"]


async def test_error_answers_exit_non_zero(served: tuple[str, Path], tmp_path: Path) -> None:
    url, config = served
    source = tmp_path / "x.py"
    source.write_text("x = ", encoding="utf-8")
    status, body = await cli(
        "complete", str(source), "--url", url, "--config", str(config), "--model", "no-such-model"
    )
    assert status == 1
    assert body["error"]["code"] == "MODEL_NOT_FOUND"
    status, body = await cli(
        "complete", str(source), "--url", url, "--config", str(config), "--api-key", "wrong"
    )
    assert status == 1
    assert body["error"]["code"] == "UNAUTHORIZED"
