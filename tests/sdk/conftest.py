"""A live ``ai-ide serve`` on a loopback port for the SDK tests (all three languages).

The server runs in its own process over the tiny generated models, exactly as
a script author meets it: a real port, the first-start key file, real
llama.cpp generation. At most one inference runs at a time
(``rate_limits.max_concurrent_inference = 1``), so a test can make the
server answer 429 with ``Retry-After`` by holding one stream open.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.keys import INITIAL_KEY_FILE
from tests.support.live_server import ROOT, LiveServer, free_port


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]
) -> Iterator[LiveServer]:
    """``ai-ide serve`` over the tiny models; stopped at the end of the session."""
    directory = tmp_path_factory.mktemp("sdk-server")
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
    ]
    for name, path in tiny_models.items():
        lines += ["[[models]]", f'id = "{name}"', f'name = "{name}"', f'path = "{path}"', ""]
    config = directory / "ai-ide.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    port = free_port()
    log = (directory / "server.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_IDE_")}
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
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=env,
    )
    root_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"ai-ide serve exited: {(directory / 'server.log').read_text()[-2000:]}"
                )
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
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
