"""A live ``ai-ide serve`` for the SDK tests: where it listens and how to reach it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from bench.peers.llama_server import stop_process
from services.keys import INITIAL_KEY_FILE
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "sdk" / "examples"
EXAMPLE_FILES = {
    "python": "documented_example.py",
    "typescript": "documented-example.mjs",
    "rust": "documented_example.rs",
}
KEY_PLACEHOLDER = "your-api-key"
URL_PLACEHOLDER = "https://api.rust-ai-ide.dev/v1"


LONG_MODEL = "tiny-codellama"
# Code whose completion by LONG_MODEL may run long (see find_long_code).
LONG_CANDIDATES = (
    "def f():\n    return ",
    "def f(items):\n    for item in items:\n        ",
    "class Box:\n    def __init__(self, size):\n        self.size = ",
    "numbers = [",
    "def total(values):\n    result = 0\n    ",
    "x = (",
)
LONG_TOKENS = 1900
LONG_ENOUGH = 400


@dataclass(frozen=True)
class LiveServer:
    """Where the server listens and how to authenticate."""

    root_url: str  # http://127.0.0.1:PORT
    api_key: str
    data_dir: Path
    # Code whose greedy completion holds the model for a while here.
    long_code: str = LONG_CANDIDATES[0]

    @property
    def base_url(self) -> str:
        """The SDKs' base URL (the API root, ``.../v1``)."""
        return f"{self.root_url}/v1"

    def env(self) -> dict[str, str]:
        """Environment for a child test runner (node, cargo) aimed at this server."""
        return {
            **os.environ,
            "AI_IDE_BASE_URL": self.base_url,
            "AI_IDE_API_KEY": self.api_key,
            "AI_IDE_TEST_MODEL": "tiny-qwen",
            "AI_IDE_TEST_LONG_MODEL": LONG_MODEL,
            "AI_IDE_TEST_LONG_CODE": self.long_code,
        }


def find_long_code(server: LiveServer) -> LiveServer:
    """``server`` with the first candidate whose completion runs long on this machine.

    The tiny models never end at an end-of-generation token, but the
    completion's stop rules end one where the random weights finish a line or
    close a block, and where that is depends on the CPU's arithmetic. Tests
    that hold the model with a stream (cancellation, a 429 while it is busy)
    need one that runs long.
    """
    tried: list[tuple[str, int]] = []
    for code in LONG_CANDIDATES:
        response = httpx.post(
            f"{server.base_url}/ai/inference/completion",
            headers={"X-API-Key": server.api_key},
            json={
                "model_id": LONG_MODEL,
                "context": {"code": code},
                "parameters": {"max_tokens": LONG_TOKENS, "stop_sequences": [], "temperature": 0},
            },
            timeout=300,
        )
        response.raise_for_status()
        generated = int(response.json()["completion"]["metadata"]["completion_tokens"])
        tried.append((code, generated))
        if generated >= LONG_ENOUGH:
            _wait_recorded(server, len(tried))
            return replace(server, long_code=code)
    raise AssertionError(f"no candidate completes {LONG_ENOUGH} tokens here: {tried}")


def _wait_recorded(server: LiveServer, count: int, seconds: float = 30.0) -> None:
    """Until the server's metrics hold these completions (records are written in batches).

    Tests count the records their own requests add; a probe's late record
    would look like one of theirs.
    """
    deadline = time.monotonic() + seconds
    while True:
        response = httpx.get(
            f"{server.base_url}/ai/monitoring/models/{LONG_MODEL}/metrics",
            headers={"X-API-Key": server.api_key},
            timeout=30,
        )
        response.raise_for_status()
        if int(response.json()["metrics"]["inference_count"]) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the probes' {count} records did not arrive")
        time.sleep(0.05)


def live_copy(language: str, server: LiveServer) -> str:
    """A committed documented example with the live server's key (and URL) in place."""
    text = (EXAMPLES / EXAMPLE_FILES[language]).read_text(encoding="utf-8")
    return text.replace(KEY_PLACEHOLDER, server.api_key).replace(URL_PLACEHOLDER, server.base_url)


def require(*tools: str) -> None:
    """Skip without these tools, or fail when ``SDK_TESTS=required`` (as in CI)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed"
    if os.environ.get("SDK_TESTS") == "required":
        pytest.fail(f"SDK_TESTS=required but {reason}")
    pytest.skip(reason)


@contextmanager
def serve_tiny_models(
    directory: Path, tiny_models: dict[str, Path], extra_config: Sequence[str] = ()
) -> Iterator[LiveServer]:
    """``ai-ide serve`` in its own process over the tiny models, on a free loopback port.

    Exactly as a user meets it: a real port, the first-start key file, real
    llama.cpp generation, at most one inference at a time per caller
    (``rate_limits.max_concurrent_inference = 1``). ``extra_config`` lines
    are appended to the TOML file before the model tables. Stopped on exit.
    """
    data_dir = directory / "data"
    lines = [
        f'data_dir = "{data_dir}"',
        "preload = []",
        "",
        "[inference]",
        "n_threads = 2",
        "",
        "[rate_limits]",
        "max_concurrent_inference = 1",
        "",
        "[webhooks]",
        'allow_hosts = ["127.0.0.1"]',
        "",
        *extra_config,
        "",
    ]
    for name, path in tiny_models.items():
        lines += ["[[models]]", f'id = "{name}"', f'name = "{name}"', f'path = "{path}"', ""]
    config = directory / "ai-ide.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    port = free_port()
    log_path = directory / "server.log"
    log = log_path.open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_IDE_")}
    command = [sys.executable, "-m", "lsp_server.cli", "serve", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env
    )
    root_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"ai-ide serve exited: {log_path.read_text()[-2000:]}")
            try:
                httpx.get(f"{root_url}/v1/ai/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError("ai-ide serve did not start in 60 s") from None
                time.sleep(0.1)
        key = (data_dir / INITIAL_KEY_FILE).read_text(encoding="utf-8").strip()
        yield LiveServer(root_url, key, data_dir)
    finally:
        stop_process(process, timeout=30)  # it finishes its in-flight work first
        log.close()
