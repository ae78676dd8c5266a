"""Running the faces: the REST API alone, or the language server plus its sidecar.

Both share one asyncio loop and one Engine. pygls's ``start_io`` would call
``asyncio.run`` itself, so the LSP message loop is started here with
``pygls.io_.run_async`` next to ``uvicorn.Server.serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
from typing import BinaryIO, NoReturn

import uvicorn
from pygls.io_ import StdinAsyncReader, StdoutWriter

from engine.config import Settings
from engine.engine import Engine
from engine.heap import freeze_startup_heap
from lsp_server.backend import Backend, LocalBackend
from lsp_server.client_cli import stored_api_key
from lsp_server.framing import FrameLoop
from lsp_server.remote_backend import RemoteBackend, probe
from lsp_server.server import create_server
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown

log = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 75


def uvicorn_server(
    engine: Engine, services: Services, settings: Settings, host: str, port: int
) -> uvicorn.Server:
    """The REST API's uvicorn server, configured as ``ai-ide serve`` runs it (not started)."""
    app = create_app(engine, services, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        h11_max_incomplete_event_size=64 * 1024,
        timeout_graceful_shutdown=5,
        # Longer than clients keep an idle connection (httpx and Node: 4-5 s):
        # with uvicorn's 5 s, a request sent as the server closed an idle
        # connection failed with a connection reset. 75 s, as nginx.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return uvicorn.Server(config)


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) != 0


async def serve_http(
    engine: Engine,
    services: Services,
    settings: Settings,
    host: str,
    port: int,
    *,
    freeze_heap: bool = False,
) -> None:
    """Serve the REST API until interrupted.

    ``freeze_heap`` (a process's entry point only) exempts what start-up
    built, the app included, from the collector's full passes.
    """
    server = uvicorn_server(engine, services, settings, host, port)
    await services.start()
    await engine.start()
    if freeze_heap:
        freeze_startup_heap()
    try:
        await server.serve()
    finally:
        await shutdown(engine, services)


async def _choose_backend(
    settings: Settings, http: bool
) -> tuple[Backend, tuple[Engine, Services] | None]:
    """The in-process engine, or the ai-ide already serving the sidecar port."""
    host, port = settings.http.host, settings.http.port
    if http and not port_is_free(host, port):
        base = f"http://{host}:{port}"
        if await probe(base):
            log.info("another ai-ide serves %s: sharing its engine", base)
            return RemoteBackend(base, stored_api_key(settings)), None
        log.warning("port %s is in use by another program; running without the sidecar", port)
    engine = Engine(settings)
    services = Services(engine, settings)
    return LocalBackend(engine, services.metrics), (engine, services)


def run_lsp(settings: Settings) -> NoReturn:
    """Serve LSP until the editor leaves, then end the process at once.

    Whatever is still queued (a model load, a generation) must not keep the
    process alive once its editor is gone: after the orderly shutdown in
    :func:`serve_lsp`, the process exits without waiting for threads still
    blocked (for example on a stdin that the editor never closed). Runner
    processes end by themselves when their pipe closes.
    """
    code = 0
    # pygls ends the process with SystemExit on some fatal errors.
    try:
        asyncio.run(serve_lsp(settings, http=settings.http.enabled, freeze_heap=True))
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def serve_lsp(
    settings: Settings,
    *,
    http: bool,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    freeze_heap: bool = False,
) -> None:
    """Serve LSP on stdio and, with ``http``, the REST sidecar on loopback.

    When the sidecar port already belongs to a running ai-ide, this language
    server uses that engine over HTTP instead of loading its own models.
    ``freeze_heap`` (a process's entry point only) exempts what start-up
    built (engine, server, sidecar app) from the collector's full passes.
    """
    backend, local = await _choose_backend(settings, http)
    lsp = create_server(backend, settings)
    stop = threading.Event()
    lsp._stop_event = stop
    reader = StdinAsyncReader(stdin or sys.stdin.buffer, lsp.thread_pool)
    lsp.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    http_server: uvicorn.Server | None = None
    http_task: asyncio.Task[None] | None = None
    if local is not None:
        engine, services = local
        if http and port_is_free(settings.http.host, settings.http.port):
            http_server = uvicorn_server(
                engine, services, settings, settings.http.host, settings.http.port
            )
            http_task = asyncio.create_task(http_server.serve())
        await services.start()
        # The editor's own model loads on `initialized`, with progress reports.
        await engine.start(preload_default=False)
    if freeze_heap:
        freeze_startup_heap()
    try:
        await FrameLoop(reader, lsp.protocol, stop=stop.is_set).run()
    finally:
        # The editor is gone (exit or end of input): end promptly, whatever
        # is queued; loads in progress are abandoned by the registry.
        if http_server is not None and http_task is not None:
            http_server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(http_task, timeout=2)
        if local is not None:
            await shutdown(*local)
        if isinstance(backend, RemoteBackend):
            await backend.close()
