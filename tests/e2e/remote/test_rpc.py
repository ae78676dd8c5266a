"""One model split across machines: llama.cpp's RPC backend with a real ggml-rpc-server.

``ggml-rpc-server`` is built by ``bench/peers/build_llama_server.sh`` from the
same llama.cpp sources as the engine, and runs here on loopback. The model
loaded with ``rpc_servers`` keeps its layers on the server and must give the
same greedy output as the same model loaded locally. Needs a llama-cpp-python
built with ``-DGGML_RPC=ON`` (``.ci/run`` builds one); otherwise this skips
(fails with ``REMOTE_TESTS=required``).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import llama_cpp
import pytest

from bench.peers.llama_server import free_port, stop_process
from engine.completion.prompts import FimPrompt
from engine.config import load_settings
from engine.engine import Engine
from engine.errors import ModelLoadFailedError
from engine.models.catalog import ModelSpec
from engine.runtime.messages import SamplingParams
from tests.support.remote_engines import peer_bin_dir, unavailable


@contextmanager
def rpc_server() -> Iterator[tuple[str, Path]]:
    """ggml-rpc-server on 127.0.0.1 (CPU device, one thread); yields host:port and its log."""
    binary = peer_bin_dir() / "ggml-rpc-server"
    if not binary.is_file():
        unavailable(f"ggml-rpc-server is not built (bench/peers/build_llama_server.sh): {binary}")
    if not llama_cpp.llama_supports_rpc():
        unavailable('llama-cpp-python is built without RPC (CMAKE_ARGS="-DGGML_RPC=ON")')
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port), "-t", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert process.poll() is None, Path(log.name).read_text(errors="replace")
                    assert time.monotonic() < deadline, "ggml-rpc-server did not listen"
                    time.sleep(0.1)
            yield f"127.0.0.1:{port}", Path(log.name)
        finally:
            stop_process(process)


async def test_a_model_split_over_an_rpc_server_gives_the_local_greedy_output(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    model = tiny_models["tiny-starcoder"]
    prompt = FimPrompt(
        prefix="def total(numbers):\n    result = 0\n",
        line_prefix="    for ",
        suffix="\n    return result\n",
    )
    with rpc_server() as (endpoint, log):
        settings = load_settings(
            None,
            data_dir=tmp_path / "data",
            preload=[],
            models=[
                ModelSpec(id="local", name="local", path=model, context_length=1024),
                ModelSpec(
                    id="split",
                    name="split",
                    path=model,
                    context_length=1024,
                    rpc_servers=(endpoint,),
                ),
            ],
            inference={"n_threads": 1, "n_seq_max": 1},
        )
        engine = Engine(settings)
        try:
            params = SamplingParams(max_tokens=24)
            local = await engine.run("local", prompt, params)
            split = await engine.run("split", prompt, params)
        finally:
            await engine.close()
        served = log.read_text(errors="replace")
    assert split.completion_tokens == local.completion_tokens == 24
    assert split.text == local.text
    # The layers really lived on the RPC server: it served a client.
    assert "Accepted client connection" in served, served[-2000:]


def test_rpc_servers_are_validated_in_the_catalog() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        ModelSpec(id="m", name="m", path=Path("/x.gguf"), rpc_servers=("no-port",))
    with pytest.raises(ValueError, match="for a local model"):
        ModelSpec(
            id="m",
            name="m",
            backend="llama-server",
            url="http://127.0.0.1:1",
            rpc_servers=("127.0.0.1:50052",),
        )


async def test_an_unreachable_rpc_server_is_a_load_error_not_a_crash(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    if not llama_cpp.llama_supports_rpc():
        unavailable('llama-cpp-python is built without RPC (CMAKE_ARGS="-DGGML_RPC=ON")')
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        preload=[],
        models=[
            ModelSpec(
                id="split",
                name="split",
                path=tiny_models["tiny-starcoder"],
                context_length=1024,
                rpc_servers=(endpoint,),
            )
        ],
        # In this process: llama.cpp's RPC client would abort it on a refused
        # connection, so the check must come first.
        inference={"n_threads": 1, "n_seq_max": 1, "isolation": "thread"},
    )
    engine = Engine(settings)
    try:
        await engine.load_model("split")
        with pytest.raises(ModelLoadFailedError, match="does not accept connections"):
            await asyncio.to_thread(engine.registry.wait_loaded, "split", 30)
        view = engine.model("split")
        assert view.status == "error"
        assert endpoint in (view.error or "")
        assert engine.health().status == "unhealthy"  # its only model failed; still answering
    finally:
        await engine.close()
