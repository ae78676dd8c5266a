"""``ai-ide serve`` in a process of its own, for benchmarks that measure it from outside.

A client in the server's own process shares its event loop and its GIL: every
event the client parses delays the server's next one, so the server's cost is
overstated by the client's. An editor or a script is another process; so is
the client here. The server is the one ``ai-ide serve`` runs
(``uvicorn_server``), with the settings ``load_settings(None, **overrides)``
gives (settings objects do not pickle; their arguments do).

With ``record_upstream`` the server process also reports each request its
remote runner sends upstream (a remote model's llama-server), so that a
benchmark can replay exactly that request to a peer llama-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

import httpx

from engine.config import load_settings
from engine.remote.http import RemoteHttp

BASE = "/v1/ai"
# A process that loads nothing (a remote model) starts in a few seconds; one
# that loads a local model, in under a minute on a 2-core machine.
START_TIMEOUT_SECONDS = 180.0


@contextlib.contextmanager
def _recording(events: Queue[Any]) -> Iterator[None]:
    """Put (path, body) of every upstream stream request on ``events``."""
    original = RemoteHttp.stream

    def stream(http: RemoteHttp, path: str, body: Any) -> Any:
        # Queue.put pickles on the queue's feeder thread, off the request's path.
        events.put(("upstream", path, body))
        return original(http, path, body)

    RemoteHttp.stream = stream  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        RemoteHttp.stream = original  # type: ignore[method-assign]


async def _serve(overrides: dict[str, Any], events: Queue[Any], stop: Any, record: bool) -> None:
    # Imported here: the parent process needs none of the server's stack.
    from engine.engine import Engine
    from lsp_server.runner import uvicorn_server
    from services.composition import Services, shutdown
    from services.keys import ApiKeyStore

    settings = load_settings(None, **overrides)
    engine = Engine(settings)
    services = Services(engine, settings)
    await services.start()
    key = ApiKeyStore.in_data_dir(services.store, settings.data_dir).create("bench").key
    # Every model loaded before the first request: what the models report
    # (their FIM family) is known then, and no request times a load.
    for spec in settings.models:
        await engine.worker_for(spec.id)
    server = uvicorn_server(engine, services, settings, "127.0.0.1", 0)
    loop = asyncio.get_running_loop()

    async def stop_when_asked() -> None:
        # The parent sets ``stop``; a signal would end the process before the
        # engine's shutdown (uvicorn re-raises it once serve() returns).
        await loop.run_in_executor(None, stop.wait)
        server.should_exit = True

    with _recording(events) if record else contextlib.nullcontext():
        task = asyncio.create_task(server.serve())
        stopper = asyncio.create_task(stop_when_asked())
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            events.put(("ready", server.servers[0].sockets[0].getsockname()[1], key))
        await task
        stopper.cancel()
    await shutdown(engine, services)


def _main(overrides: dict[str, Any], events: Queue[Any], stop: Any, record: bool) -> None:
    asyncio.run(_serve(overrides, events, stop, record))


@dataclass
class ServerProcess:
    """A running server process: an HTTP client for it and what it reports."""

    http: httpx.AsyncClient
    events: Queue[Any]
    pid: int

    async def busy(self) -> bool:
        """True while the server decodes or queues anything (``GET /health``)."""
        health = (await self.http.get(f"{BASE}/health")).json()
        inference = health["services"]["inference_engine"]
        return bool(inference["active_requests"] or inference["queue_length"])

    async def last_upstream(self) -> tuple[str, dict[str, object]]:
        """The last upstream request sent since the previous call (waits for the first)."""
        loop = asyncio.get_running_loop()
        kind, path, body = await loop.run_in_executor(None, self.events.get, True, 30)
        while True:
            try:
                kind, path, body = self.events.get_nowait()
            except queue.Empty:
                break
        assert kind == "upstream", kind
        return path, body


async def _ready(events: Queue[Any], process: Any) -> tuple[str, int, str]:
    """The child's ("ready", port, key), or an error as soon as it has died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_SECONDS
    while loop.time() < deadline:
        try:
            message = await loop.run_in_executor(None, events.get, True, 0.5)
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"the server process exited with code {process.exitcode} before it served"
                ) from None
            continue
        assert message[0] == "ready", message
        return message  # type: ignore[no-any-return]
    raise RuntimeError(f"the server process did not serve within {START_TIMEOUT_SECONDS:g} s")


@contextlib.asynccontextmanager
async def rest_server_process(
    overrides: dict[str, Any], record_upstream: bool = False
) -> AsyncIterator[ServerProcess]:
    """Start the REST server in a child process; yield a client for it; stop it."""
    context = multiprocessing.get_context("spawn")
    events: Queue[Any] = context.Queue()
    stop = context.Event()
    process = context.Process(
        target=_main, args=(overrides, events, stop, record_upstream), name="ai-ide-bench-serve"
    )
    process.start()
    try:
        _, port, key = await _ready(events, process)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=300
        ) as http:
            assert process.pid is not None
            yield ServerProcess(http, events, process.pid)
    finally:
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, process.join, 30)
        if process.is_alive():
            process.kill()
