"""Start llama.cpp's llama-server (built by ``build_llama_server.sh``) on a loopback port.

    with running_llama_server(model_path, slots=4, context=8192) as base_url:
        httpx.post(f"{base_url}/completion", json={...})

The binary comes from the build cache (built on first use, 10-25 minutes on
two cores) or from ``AI_IDE_LLAMA_SERVER``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from engine.runtime.llama_backend import flash_attention, repack_weights

BUILD_SCRIPT = Path(__file__).with_name("build_llama_server.sh")


def peer_bin_dir() -> Path:
    """The directory holding llama-server, llama-batched-bench and rpc-server."""
    override = os.environ.get("AI_IDE_LLAMA_SERVER")
    if override:
        return Path(override).parent
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), sys.executable],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port nothing listens on (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def llama_server_command(
    binary: Path,
    source: Sequence[str],
    port: int,
    *,
    context: int,
    slots: int,
    threads: int,
    cache_reuse: int = 256,
    extra: Sequence[str] = (),
) -> list[str]:
    """The llama-server command line for ``source`` (``--model F`` or ``--models-dir D``).

    On 127.0.0.1, with the prompt cache and ``--cache-reuse`` on and no web UI:
    how the benchmarks and the remote-engine tests both run it. Weights are
    repacked where the engine repacks them (``repack_weights``: not on a CPU
    whose AMX path crashes llama.cpp), and flash attention is what the
    engine's "auto" resolves to for a CPU model (``flash_attention``: off,
    since the CPU kernel sums in half precision), so both run the same kernels.
    """
    kernels = [] if repack_weights("auto") else ["--no-repack"]
    kernels += ["--flash-attn", flash_attention("auto", n_gpu_layers=0)]
    return [
        str(binary),
        *source,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(context),
        "--parallel",
        str(slots),
        "--threads",
        str(threads),
        "--cache-reuse",
        str(cache_reuse),
        "--no-webui",
        *kernels,
        *extra,
    ]


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """End a server process started here: terminate, then kill after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit`` while inside, so that ``finally`` blocks run.

    Python's default for SIGTERM ends the process at once: a benchmark
    stopped with ``kill`` or ``pkill`` left its llama-servers running. Only
    the main thread can set handlers, and one set by the caller is left alone.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def running_llama_server(
    model: Path,
    *,
    slots: int = 1,
    context: int = 4096,
    threads: int | None = None,
    cache_reuse: int = 256,
    extra: Sequence[str] = (),
    startup_seconds: float = 120.0,
) -> Iterator[str]:
    """llama-server on 127.0.0.1 with the prompt cache on; yields its base URL."""
    port = free_port()
    command = llama_server_command(
        peer_bin_dir() / "llama-server",
        ["--model", str(model)],
        port,
        context=context,
        slots=slots,
        threads=threads or os.cpu_count() or 2,
        cache_reuse=cache_reuse,
        extra=extra,
    )
    with exit_on_sigterm(), tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_healthy(process, log, f"http://127.0.0.1:{port}", startup_seconds)
        finally:
            stop_process(process)


def _wait_healthy(
    process: subprocess.Popen[bytes], log: IO[bytes], base: str, startup_seconds: float
) -> str:
    """``base`` once llama-server answers /health; its log tail if it died first."""
    deadline = time.monotonic() + startup_seconds
    while True:
        if process.poll() is not None:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"llama-server exited with {process.returncode}: {tail}")
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("llama-server did not become healthy")
        time.sleep(0.2)
