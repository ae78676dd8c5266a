"""Progress of the long script commands: a bar on a terminal, plain lines in a pipe, quiet.

``ai-ide batch`` and ``ai-ide models load`` run against a live ``ai-ide
serve`` over the tiny models (real llama.cpp). stdout always carries only
the JSON answer; the progress goes to stderr, which is a pty for the
terminal case.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lsp_server.progress import ProgressReport, progress_mode
from tests.support.live_server import ROOT, LiveServer, serve_tiny_models


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]
) -> Iterator[LiveServer]:
    models = {name: tiny_models[name] for name in ("tiny-qwen", "tiny-codellama")}
    with serve_tiny_models(tmp_path_factory.mktemp("cli-server"), models) as live:
        yield live


def command(server: LiveServer, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lsp_server.cli",
        *args,
        "--url",
        server.root_url,
        "--api-key",
        server.api_key,
    ]


def run_piped(server: LiveServer, *args: str) -> tuple[int, Any, str]:
    done = subprocess.run(
        command(server, *args), check=False, capture_output=True, text=True, timeout=240, cwd=ROOT
    )
    try:
        body = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON: {done.stdout!r} {done.stderr!r}") from exc
    return done.returncode, body, done.stderr


def run_on_a_terminal(server: LiveServer, *args: str) -> tuple[int, Any, str]:
    """stderr on a pty (what a person sees), stdout still a pipe."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        command(server, *args),
        stdout=subprocess.PIPE,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
    )
    os.close(follower)
    seen = bytearray()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.stdout is not None
    out = process.stdout.read()
    process.wait(timeout=30)
    return process.returncode, json.loads(out), seen.decode("utf-8", "replace")


def batch_file(tmp_path: Path, count: int) -> Path:
    lines = [
        {
            "id": f"r{i}",
            "model_id": "tiny-qwen",
            "type": "completion",
            "context": {"code": f"value_{i} = "},
            "parameters": {"max_tokens": 24},
        }
        for i in range(count)
    ]
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_the_mode_follows_the_stream(tmp_path: Path) -> None:
    assert progress_mode(True) == "quiet"
    with (tmp_path / "log").open("w") as file:
        assert progress_mode(False, file) == "lines"
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert progress_mode(False, terminal) == "bar"
    finally:
        os.close(leader)
        os.close(follower)
    # Lines are written only when the figure changes.
    log = tmp_path / "lines"
    with log.open("w") as file, ProgressReport("work", 3, "lines", stream=file) as progress:
        for done in (0, 0, 1, 1, 3):
            progress.update(done, "running")
    assert log.read_text().splitlines() == [
        "work: 0/3 (running)",
        "work: 1/3 (running)",
        "work: 3/3 (running)",
    ]


def test_batch_in_a_pipe_prints_plain_progress_lines(server: LiveServer, tmp_path: Path) -> None:
    status, body, stderr = run_piped(server, "batch", str(batch_file(tmp_path, 4)))
    assert status == 0, (body, stderr)
    assert body["status"] == "completed"
    assert [r["request_id"] for r in body["results"]] == ["r0", "r1", "r2", "r3"]
    lines = stderr.splitlines()
    assert lines, "no progress at all"
    assert all(line.startswith(f"batch {body['batch_id']}: ") for line in lines), lines
    assert lines[-1] == f"batch {body['batch_id']}: 4/4 (completed)"
    assert "\x1b[" not in stderr  # no terminal codes in a log


def test_batch_on_a_terminal_draws_a_bar(server: LiveServer, tmp_path: Path) -> None:
    status, body, screen = run_on_a_terminal(server, "batch", str(batch_file(tmp_path, 3)))
    assert status == 0
    assert body["status"] == "completed" and len(body["results"]) == 3
    assert "━" in screen and "3/3" in screen, screen[-500:]
    assert f"batch {body['batch_id']}" in screen


def test_batch_quiet_prints_only_the_answer(server: LiveServer, tmp_path: Path) -> None:
    status, body, stderr = run_piped(server, "batch", str(batch_file(tmp_path, 2)), "--quiet")
    assert status == 0 and body["status"] == "completed"
    assert stderr == ""


def test_models_load_follows_the_load(server: LiveServer) -> None:
    headers = {"X-API-Key": server.api_key}
    status, body, stderr = run_piped(server, "models", "load", "tiny-codellama")
    assert status == 0, (body, stderr)
    assert body["id"] == "tiny-codellama" and body["status"] == "loaded"
    assert body["memory_usage_mb"] > 0
    lines = stderr.splitlines()
    assert lines[-1] == "load tiny-codellama: 100/100 % (loaded)", lines
    models = httpx.get(f"{server.root_url}/v1/ai/models", headers=headers).json()["models"]
    assert {m["id"]: m["status"] for m in models}["tiny-codellama"] == "loaded"
    unloaded = httpx.post(f"{server.root_url}/v1/ai/models/tiny-codellama/unload", headers=headers)
    assert unloaded.status_code == 200

    status, body, screen = run_on_a_terminal(server, "models", "load", "tiny-codellama")
    assert status == 0 and body["status"] == "loaded"
    assert "━" in screen and "load tiny-codellama" in screen and "100/100" in screen
    httpx.post(f"{server.root_url}/v1/ai/models/tiny-codellama/unload", headers=headers)

    status, body, stderr = run_piped(server, "models", "load", "tiny-codellama", "--quiet")
    assert status == 0 and body["status"] == "loaded" and stderr == ""


def test_models_load_of_an_unknown_model_fails_cleanly(server: LiveServer) -> None:
    status, body, stderr = run_piped(server, "models", "load", "no-such-model")
    assert status == 1
    assert body["error"]["code"] == "MODEL_NOT_FOUND"
    assert "Traceback" not in stderr


def test_a_running_batch_reports_its_progress(server: LiveServer) -> None:
    headers = {"X-API-Key": server.api_key}
    # Requests long enough (greedy, on a model that does not stop early) that
    # the polls below see the batch between two of them, on a fast machine too.
    requests = [
        {
            "id": f"p{i}",
            "model_id": "tiny-codellama",
            "type": "completion",
            "context": {"code": "def f():\n    return "},
            "parameters": {"max_tokens": 400, "stop_sequences": [], "temperature": 0.0},
        }
        for i in range(6)
    ]
    accepted = httpx.post(
        f"{server.root_url}/v1/ai/batch/inference",
        headers=headers,
        json={"requests": requests, "options": {"async": True, "parallel_execution": False}},
    )
    assert accepted.status_code == 202, accepted.text
    url = f"{server.root_url}/v1/ai/batch/{accepted.json()['batch_id']}"
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = httpx.get(url, headers=headers).json()
        if body["status"] != "running":
            break
        if body.get("progress") is not None:
            assert body["progress"]["total_requests"] == 6
            seen.append(body["progress"]["finished_requests"])
        time.sleep(0.02)
    assert body["status"] == "completed" and body.get("progress") is None
    assert seen, "no progress while running"
    assert seen == sorted(seen) and all(0 <= n <= 6 for n in seen)
    assert any(0 < n < 6 for n in seen), seen
