"""Soak: mixed editor and REST traffic while model runners are killed at random.

One real ``ai-ide lsp`` process serves both faces (LSP on stdio, the REST
sidecar on a loopback port) over tiny models. For a bounded time an editor
types and asks for inline completions, a script sends completions and async
jobs, and every few seconds a random runner process is killed with SIGKILL
or SIGABRT. Afterwards: no request hung, every accepted job reached a
terminal state, the server never exited, and once the models are unloaded
no runner process is left and the server's memory is back near where it
started.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from lsprotocol import types
from pygls.lsp.client import LanguageClient

SOAK_SECONDS = float(os.environ.get("AI_IDE_SOAK_SECONDS", "40"))
MAX_JOBS = 12  # async jobs accepted during the soak (each must reach a terminal state)
REQUEST_TIMEOUT = 90.0  # a request that takes longer than this has hung
URI = "file:///soak/shapes.py"
TEXT = "def area(width, height):\n    return width * height\n\n\ndef perimeter(width, height):\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(directory: Path, models: dict[str, Path], port: int) -> Path:
    lines = [
        f'data_dir = "{directory / "data"}"',
        "",
        "[http]",
        f"port = {port}",
        "",
        "[inference]",
        "n_threads = 2",
        "max_crashes = 1000",
        "restart_backoff_seconds = 0.2",
        "",
        "[rate_limits]",
        "enabled = false",
        "",
    ]
    for name in ("tiny-starcoder", "tiny-qwen"):
        lines += [
            "[[models]]",
            f'id = "{name}"',
            f'name = "{name}"',
            f'path = "{models[name]}"',
            "",
        ]
    config = directory / "soak.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def runners(server: psutil.Process) -> list[psutil.Process]:
    """Runner processes: children of the fork server, itself a child of the server."""
    found = []
    for child in server.children(recursive=True):
        try:
            if child.ppid() != server.pid:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def footprint_mb(server: psutil.Process) -> float:
    return float(server.memory_info().rss) / 2**20


class Tally:
    """What the traffic saw."""

    def __init__(self) -> None:
        self.answered = 0
        self.crashed = 0  # MODEL_CRASHED / not loaded while restarting: documented answers
        self.other_errors: list[str] = []
        self.jobs: list[str] = []


async def editor(client: LanguageClient, tally: Tally, until: float) -> None:
    text, version = TEXT, 1
    typed = "    return 2 * (width + height)\n"
    index = 0
    while time.monotonic() < until:
        char = typed[index % len(typed)]
        index += 1
        lines = text.split("\n")
        line, column = len(lines) - 1, len(lines[-1])
        version += 1
        point = types.Position(line=line, character=column)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=point, end=point), text=char
                    )
                ],
            )
        )
        text += char
        after = text.split("\n")
        try:
            await asyncio.wait_for(
                client.text_document_inline_completion_async(
                    types.InlineCompletionParams(
                        text_document=types.TextDocumentIdentifier(uri=URI),
                        position=types.Position(line=len(after) - 1, character=len(after[-1])),
                        context=types.InlineCompletionContext(
                            trigger_kind=types.InlineCompletionTriggerKind.Automatic
                        ),
                    )
                ),
                REQUEST_TIMEOUT,
            )
            tally.answered += 1
        except TimeoutError:
            raise AssertionError("an inline completion hung") from None
        except Exception as exc:  # an error response (cancelled, model crashed): answered
            tally.crashed += 1
            del exc
        await asyncio.sleep(0.05)


async def script(http: httpx.AsyncClient, tally: Tally, until: float) -> None:
    count = 0
    while time.monotonic() < until:
        count += 1
        body: dict[str, Any] = {
            "model_id": random.choice(["tiny-starcoder", "tiny-qwen"]),
            "context": {"language": "python", "code": f"def f{count}(x):\n    return "},
            "parameters": {"max_tokens": 24},
        }
        if count % 4 == 0 and len(tally.jobs) < MAX_JOBS:
            body["options"] = {"async": True}
        try:
            response = await http.post("/v1/ai/inference/completion", json=body)
        except httpx.TimeoutException:
            raise AssertionError("a REST completion hung") from None
        if response.status_code == 202:
            tally.jobs.append(response.json()["status_url"])
        elif response.status_code == 200:
            tally.answered += 1
        elif response.status_code == 503:
            code = response.json()["error"]["code"]
            assert code in ("MODEL_CRASHED", "MODEL_LOAD_FAILED", "MODEL_LOADING"), code
            tally.crashed += 1
        else:
            tally.other_errors.append(f"{response.status_code} {response.text[:200]}")
        await asyncio.sleep(0.05)  # a script's pace, not a flood


async def chaos(server: psutil.Process, until: float) -> int:
    kills = 0
    rng = random.Random(7)
    while time.monotonic() < until:
        await asyncio.sleep(rng.uniform(3.0, 6.0))
        alive = runners(server)
        if alive:
            victim = rng.choice(alive)
            try:
                victim.send_signal(rng.choice([signal.SIGKILL, signal.SIGABRT]))
                kills += 1
            except psutil.NoSuchProcess:
                pass
    return kills


async def test_soak_with_runners_killed_at_random(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    port = free_port()
    config = write_config(tmp_path, tiny_models, port)
    client = LanguageClient("soak", "1")
    await client.start_io(sys.executable, "-m", "lsp_server.cli", "lsp", "--config", str(config))
    server = psutil.Process(client._server.pid)  # type: ignore[union-attr]
    try:
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                initialization_options={"model": "tiny-starcoder", "maxTokens": 12},
            )
        )
        client.initialized(types.InitializedParams())
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=URI, language_id="python", version=1, text=TEXT
                )
            )
        )
        key_file = tmp_path / "data" / "api-key"
        for _ in range(600):
            if key_file.exists():
                break
            await asyncio.sleep(0.05)
        baseline = footprint_mb(server)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"X-API-Key": key_file.read_text().strip()},
            timeout=REQUEST_TIMEOUT,
        ) as http:
            for model in ("tiny-starcoder", "tiny-qwen"):
                await http.post(f"/v1/ai/models/{model}/load")
            tally = Tally()
            until = time.monotonic() + SOAK_SECONDS
            _, _, kills = await asyncio.gather(
                editor(client, tally, until), script(http, tally, until), chaos(server, until)
            )
            print(
                f"soak: {tally.answered} answered, {tally.crashed} refused (crash), {kills} kills"
            )
            assert server.is_running() and server.status() != psutil.STATUS_ZOMBIE
            assert kills >= 3 and tally.answered > 0
            assert tally.other_errors == []
            # Every accepted job ends, completed or failed (a crash is retried).
            for url in tally.jobs:
                for _ in range(1200):
                    status = (await http.get(url)).json()["status"]
                    if status in ("completed", "failed"):
                        break
                    await asyncio.sleep(0.1)
                assert status in ("completed", "failed"), f"{url} stayed {status}"
            print(f"soak: {len(tally.jobs)} jobs ended")
            health = await http.get("/v1/ai/health")
            assert health.status_code == 200
            # Unload everything: no runner is left and the memory went back.
            for model in ("tiny-starcoder", "tiny-qwen"):
                for _ in range(600):
                    listed = (await http.get("/v1/ai/models")).json()["models"]
                    state = next(m["status"] for m in listed if m["id"] == model)
                    if state == "loaded":
                        break
                    await asyncio.sleep(0.1)
                await http.post(f"/v1/ai/models/{model}/unload")
            for _ in range(200):
                if not runners(server):
                    break
                await asyncio.sleep(0.05)
            assert runners(server) == []
            assert footprint_mb(server) < baseline + 64
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
