"""Real remote inference engines for tests, on loopback: llama-server and llama-cpp-python's server.

``llama-server`` is the binary ``bench/peers/build_llama_server.sh`` builds
from the llama.cpp sources vendored in llama-cpp-python's sdist (cached in
``~/.cache/ai-ide/peers``; ``.ci/run`` builds it); it is started with
``bench.peers.llama_server.running_llama_server``. ``python -m
llama_cpp.server`` comes with the ``llama-cpp-python[server]`` extra of the
test dependencies.

Without the binary the tests that need it skip, saying how to build it;
with ``REMOTE_TESTS=required`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from bench.peers.llama_server import free_port, llama_server_command, stop_process

REQUIRED_ENV = "REMOTE_TESTS"


def unavailable(what: str) -> NoReturn:
    """Skip (or, with REMOTE_TESTS=required, fail) a test whose engine cannot start."""
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(f"{what} ({REQUIRED_ENV}=required)", pytrace=False)
    pytest.skip(what)


def peer_bin_dir() -> Path:
    """The cached build of llama-server and ggml-rpc-server (never builds it here).

    The path is the build script's default cache (tests/conftest.py removes
    every ``AI_IDE_*`` variable, so its overrides do not reach the tests).
    """
    version = importlib.metadata.version("llama-cpp-python")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai-ide" / "peers"
    return cache / f"llama.cpp-{version}" / "bin"


def require_llama_server() -> Path:
    """The llama-server binary, or skip/fail saying how to build it."""
    binary = peer_bin_dir() / "llama-server"
    if not os.access(binary, os.X_OK):
        unavailable(f"llama-server is not built: run bench/peers/build_llama_server.sh ({binary})")
    return binary


@contextmanager
def llama_server_process(
    model: Path,
    *,
    port: int | None = None,
    slots: int = 2,
    context: int = 4096,
    router: bool = False,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """llama-server on 127.0.0.1 (one thread, prompt cache on); yields its URL and process.

    ``router``: ``model`` is a directory and llama-server runs as a router
    (``--models-dir``), loading its models on request.
    """
    binary = require_llama_server()
    port = port or free_port()
    source = ["--models-dir", str(model), "--models-max", "1"] if router else []
    source = source or ["--model", str(model)]
    command = llama_server_command(
        binary, source, port, context=context, slots=slots, threads=1, cache_reuse=256
    )
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(process, log, f"{base}/health", "llama-server")
            yield base, process
        finally:
            stop_process(process)


@contextmanager
def llama_cpp_python_server(model: Path, *, context: int = 2048) -> Iterator[str]:
    """``python -m llama_cpp.server`` (OpenAI-compatible) on 127.0.0.1; yields its base URL."""
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        unavailable(f"llama_cpp.server needs the llama-cpp-python[server] extra: {exc}")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(context),
        "--n_threads",
        "1",
    ]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(process, log, f"{base}/v1/models", "llama_cpp.server")
            yield base
        finally:
            stop_process(process)


def _wait(process: subprocess.Popen[bytes], log: object, url: str, what: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            tail = log.read()[-2000:].decode(errors="replace")  # type: ignore[attr-defined]
            raise RuntimeError(f"{what} exited with {process.returncode}: {tail}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer {url}")
        time.sleep(0.2)
