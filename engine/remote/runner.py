"""A model served by a remote engine, behind the runner interface of a local one.

:class:`RemoteRunner` has the interface of
:class:`~engine.runtime.runner.RunnerClient` (:class:`~engine.runtime.port.ModelRunner`):
the registry starts it (a probe of the engine instead of loading weights),
the engine submits the same :class:`~engine.runtime.messages.GenerationRequest`
messages and reads the same token, done and error events, so completion,
generation, refactoring, orchestration, batch, metrics and webhooks work on a
remote model unchanged.

Inside, one thread runs an asyncio loop with an ``httpx`` client:

- at most ``parallel`` requests are sent at once (the engine's slots); the
  rest wait here, by priority (an editor keystroke first), so that an
  editor's request never queues behind batch work at the engine;
- a newer request of a document supersedes its older ones, and a keystroke
  cancels speculative work, as in the local scheduler;
- cancelling a request closes its connection, which stops the generation at
  the engine; stop sequences, the end of the block and the time budget are
  checked here on the streamed text (:class:`~engine.runtime.text_stream.TextStream`),
  and reaching one closes the connection too;
- when the circuit breaker opens (the engine is unreachable), every request
  fails with ``SERVICE_UNAVAILABLE`` and ``on_exit`` tells the registry,
  which shows the model ``error`` and probes the engine again with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from engine.completion.prompts import FimTokens
from engine.errors import (
    EngineError,
    InferenceFailedError,
    InferenceTimeoutError,
    ModelLoadFailedError,
    QueueFullError,
    RemoteEngineError,
    RequestCancelledError,
)
from engine.models.catalog import ModelSpec
from engine.remote.engine_kind import EngineKind, RemoteFacts, StreamChunk
from engine.remote.http import CircuitBreaker, RemoteHttp
from engine.remote.llama_server import LlamaServer
from engine.remote.openai import OpenAICompatible
from engine.runtime.messages import (
    DoneEvent,
    ErrorEvent,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Priority,
    TokenEvent,
)
from engine.runtime.port import ExitListener
from engine.runtime.scheduler import preempted_by
from engine.runtime.text_stream import TextStream
from engine.runtime.worker import ModelInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

# An idle engine is pinged this often, so a dead one shows as error without traffic.
PING_INTERVAL_SECONDS = 5.0
_ENGINE_FINISH: dict[str, FinishReason] = {"eos": "eos", "stop": "stop", "length": "length"}


def _kind(spec: ModelSpec, http: RemoteHttp) -> EngineKind:
    if spec.backend == "llama-server":
        return LlamaServer(spec, http)
    return OpenAICompatible(spec, http)


class RemoteRunner:
    """One remote model: requests in, token/done/error events out, cancel by id."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        request_timeout: float,
        max_queue: int,
        on_exit: ExitListener | None = None,
    ) -> None:
        self.model_id = spec.id
        self.spec = spec
        self.info: ModelInfo | None = None
        self.on_exit = on_exit
        self._request_timeout = request_timeout
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._queued_by = [0] * len(Priority)  # requests waiting, per priority class
        self._active = 0
        self._dead: str | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Owned by the loop thread:
        self._http: RemoteHttp | None = None
        self._kind: EngineKind | None = None
        self._facts: RemoteFacts | None = None
        self._order = itertools.count()
        self._waiting: list[tuple[int, int, float, GenerationRequest]] = []
        self._running: dict[str, tuple[GenerationRequest, asyncio.Task[None]]] = {}
        self._reasons: dict[str, EngineError] = {}
        self._slot_of_group: dict[str, int] = {}
        self._slot_of_request: dict[str, int] = {}
        self._pinger: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """None: the model's memory belongs to the remote engine."""
        return None

    @property
    def facts(self) -> RemoteFacts | None:
        """What the last probe learnt (None before start)."""
        return self._facts

    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def start(self, timeout: float | None = None) -> ModelInfo:
        """Probe the engine (and load the model where it is a router); block until done."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"remote-{self.model_id}", daemon=True
        )
        self._thread.start()
        limit = timeout or self._request_timeout
        started = time.monotonic()
        try:
            facts = self._on_loop(self._open(limit)).result(timeout=limit + 5)
        except EngineError:
            self._end_loop()
            raise
        except TimeoutError as exc:
            self._end_loop()
            raise ModelLoadFailedError(
                f"{self.spec.backend} did not answer within {limit:g} s", {"reason": "timeout"}
            ) from exc
        except Exception as exc:
            self._end_loop()
            log.exception("probing %s failed", self.model_id)
            raise ModelLoadFailedError(
                f"probing the remote engine failed: {type(exc).__name__}"
            ) from exc
        self.info = ModelInfo(
            description=facts.description,
            size_bytes=0,
            n_params=0,
            n_vocab=0,
            n_ctx=facts.n_ctx,
            n_ctx_train=facts.n_ctx,
            n_seq_max=facts.parallel,
            fim_family=facts.fim_family,
            fim=FimTokens(None, None, None),
            chat_template=facts.chat_template,
            load_seconds=time.monotonic() - started,
            bos_text=facts.bos_text,
            eos_text=facts.eos_text,
        )
        return self.info

    async def _open(self, limit_seconds: float) -> RemoteFacts:
        spec = self.spec
        api_key: str | None = None
        if spec.api_key_env is not None:
            api_key = os.environ.get(spec.api_key_env)
            if not api_key:
                raise ModelLoadFailedError(
                    f"model '{spec.id}': the environment variable {spec.api_key_env} "
                    "(api_key_env) is not set",
                    {"reason": "api_key_missing", "api_key_env": spec.api_key_env},
                )
        assert spec.url is not None
        breaker = CircuitBreaker(spec.breaker_failures, on_open=self._down)
        self._http = RemoteHttp(
            spec.url,
            label=spec.backend,
            api_key=api_key,
            connect_timeout=spec.connect_timeout_seconds,
            read_timeout=self._request_timeout,
            breaker=breaker,
            max_connections=spec.parallel,
        )
        self._kind = _kind(spec, self._http)
        try:
            async with asyncio.timeout(limit_seconds):
                facts = await self._kind.probe()
                if facts.router:
                    await self._kind.load(limit_seconds)
                    facts = await self._kind.probe()
        except TimeoutError as exc:
            raise ModelLoadFailedError(
                f"{spec.backend} did not answer within {limit_seconds:g} s", {"reason": "timeout"}
            ) from exc
        except RemoteEngineError as exc:
            # Not reachable: the registry probes again later (see ModelRegistry).
            raise ModelLoadFailedError(exc.message, {**exc.details, "unreachable": True}) from exc
        self._facts = facts
        self._pinger = asyncio.get_running_loop().create_task(self._ping_loop())
        return facts

    def stop(self) -> None:
        """Stop serving: queued and running requests fail as unloaded."""
        with self._lock:
            self._stopping = True
        if self._loop is None or self._loop.is_closed():
            return
        unloaded = ModelLoadFailedError(f"model '{self.model_id}' was unloaded")
        try:
            self._on_loop(self._fail_all(unloaded)).result(timeout=10)
        except Exception:
            log.exception("stopping %s", self.model_id)
        self._end_loop()

    def abandon(self) -> None:
        """Shutting down: the same as :meth:`stop` (nothing here can hang in native code)."""
        self.stop()

    def can_unload(self) -> bool:
        """Whether the engine unloads the model on request (a llama-server router)."""
        return (
            self._kind is not None
            and self._facts is not None
            and (self._kind.can_unload(self._facts))
        )

    def unload_remote(self) -> None:
        """Ask the engine to unload the model (a router), then stop serving it here."""
        assert self._kind is not None
        self._on_loop(self._kind.unload()).result(timeout=60)
        self.stop()

    def _end_loop(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def close() -> None:
            if self._pinger is not None:
                self._pinger.cancel()
            if self._http is not None:
                await self._http.aclose()

        if threading.current_thread() is self._thread:
            loop.create_task(close()).add_done_callback(lambda _: loop.stop())
            return  # the loop thread closes the loop when run_forever returns
        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        except Exception:
            log.debug("closing the HTTP client of %s failed", self.model_id, exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not loop.is_running():
            loop.close()

    # -- requests (any thread) ---------------------------------------------------

    def submit(self, request: GenerationRequest) -> None:
        """Queue a request; its events arrive on ``request.sink``."""
        with self._lock:
            if self._dead is not None:
                raise RemoteEngineError(
                    f"model '{self.model_id}' is not reachable: {self._dead}",
                    {"model_id": self.model_id, "reason": self._dead},
                )
            if self._stopping:
                raise ModelLoadFailedError(f"model '{self.model_id}' is unloading")
            queued = sum(self._queued_by)
            if queued >= self._max_queue:
                raise QueueFullError(
                    f"model '{self.model_id}' has {queued} queued requests",
                    {"queue_length": queued, "max_queue": self._max_queue},
                )
            self._queued_by[request.priority] += 1
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._accept, request, time.monotonic())

    def cancel(self, request_id: str, reason: EngineError | None = None) -> None:
        """Drop a waiting request, or close a running one's connection."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        why = reason or RequestCancelledError("request cancelled")
        # RuntimeError: the loop has just closed, so nothing is running any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._cancel, request_id, why)

    @property
    def queue_length(self) -> int:
        """Requests waiting here for one of the engine's slots."""
        with self._lock:
            return sum(self._queued_by)

    @property
    def queued_by_priority(self) -> tuple[int, ...]:
        """Requests waiting here, per priority class (indexed by ``Priority``)."""
        with self._lock:
            return tuple(self._queued_by)

    @property
    def active_requests(self) -> int:
        """Requests sent to the engine and not finished."""
        with self._lock:
            return self._active

    # -- scheduling (the loop thread) --------------------------------------------

    def _accept(self, request: GenerationRequest, submitted: float) -> None:
        for match, reason in preempted_by(request):
            self._cancel_where(match, reason)
        heapq.heappush(
            self._waiting, (int(request.priority), next(self._order), submitted, request)
        )
        self._admit()

    def _cancel_where(self, match: Any, reason: EngineError) -> None:
        for _, _, _, waiting in list(self._waiting):
            if match(waiting):
                self._cancel(waiting.request_id, reason)
        for request, _ in list(self._running.values()):
            if match(request):
                self._cancel(request.request_id, reason)

    def _cancel(self, request_id: str, reason: EngineError) -> None:
        for index, (_, _, _, waiting) in enumerate(self._waiting):
            if waiting.request_id == request_id:
                self._waiting.pop(index)
                heapq.heapify(self._waiting)
                with self._lock:
                    self._queued_by[waiting.priority] -= 1
                waiting.sink.emit(ErrorEvent(request_id, reason))
                return
        running = self._running.get(request_id)
        if running is not None and request_id not in self._reasons:
            self._reasons[request_id] = reason
            running[1].cancel()

    def _admit(self) -> None:
        facts = self._facts
        capacity = facts.parallel if facts is not None else 1
        while self._waiting and len(self._running) < capacity:
            _, _, submitted, request = heapq.heappop(self._waiting)
            with self._lock:
                self._queued_by[request.priority] -= 1
                self._active += 1
            assert self._loop is not None
            task = self._loop.create_task(self._serve(request, submitted))
            self._running[request.request_id] = (request, task)

    async def _fail_all(self, error: EngineError) -> None:
        while self._waiting:
            _, _, _, request = heapq.heappop(self._waiting)
            with self._lock:
                self._queued_by[request.priority] -= 1
            request.sink.emit(ErrorEvent(request.request_id, error))
        tasks = [task for _, task in self._running.values()]
        for request_id, (_, task) in list(self._running.items()):
            self._reasons.setdefault(request_id, error)
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _down(self, reason: str) -> None:
        """The breaker opened: fail everything, tell the registry, end this runner."""
        with self._lock:
            if self._dead is not None or self._stopping:
                return
            self._dead = reason
        error = RemoteEngineError(
            f"model '{self.model_id}' is not reachable: {reason}",
            {"model_id": self.model_id, "reason": reason},
        )
        loop = self._loop
        assert loop is not None
        # The registry hears it now, before any request fails: the request
        # whose failure opened the breaker fails as soon as this returns, and
        # its client must then find the model in error (GET /models, /health).
        if self.on_exit is not None:
            try:
                self.on_exit(reason)
            except Exception:
                log.exception("exit listener of %s failed", self.model_id)

        async def finish() -> None:
            await self._fail_all(error)
            self._end_loop()

        loop.create_task(finish())

    async def _ping_loop(self) -> None:
        """While idle, ask the engine whether it is there (failures count on the breaker)."""
        assert self._http is not None
        path = "/health" if self.spec.backend == "llama-server" else "/v1/models"
        while True:
            await asyncio.sleep(PING_INTERVAL_SECONDS)
            if self._running:
                continue  # traffic already tells
            try:
                await self._http.call("GET", path, idempotent=True)
            except EngineError as exc:
                log.warning("model %s: %s", self.model_id, exc.message)

    # -- one generation ------------------------------------------------------------

    async def _serve(self, request: GenerationRequest, submitted: float) -> None:
        request_id = request.request_id
        try:
            result = await self._generate(request, submitted, time.monotonic())
        except asyncio.CancelledError:
            reason = self._reasons.get(request_id) or RequestCancelledError("request cancelled")
            request.sink.emit(ErrorEvent(request_id, reason))
        except EngineError as exc:
            request.sink.emit(ErrorEvent(request_id, exc))
        except Exception as exc:
            log.exception("remote generation failed for %s", self.model_id)
            failure = InferenceFailedError(f"generation failed: {type(exc).__name__}")
            request.sink.emit(ErrorEvent(request_id, failure))
        else:
            request.sink.emit(DoneEvent(request_id, result))
        finally:
            self._running.pop(request_id, None)
            self._reasons.pop(request_id, None)
            self._slot_of_request.pop(request_id, None)
            with self._lock:
                self._active -= 1
            self._admit()

    def _slot_for(self, request: GenerationRequest) -> int | None:
        """The engine slot the document used last, unless another request of ours holds it."""
        if request.group is None:
            return None
        slot = self._slot_of_group.get(request.group)
        if slot is None or slot in self._slot_of_request.values():
            return None
        return slot

    async def _generate(
        self, request: GenerationRequest, submitted: float, admitted: float
    ) -> GenerationResult:
        assert self._kind is not None and self._facts is not None and self._http is not None
        limit = self._request_timeout
        if request.deadline is not None:
            limit = min(limit, request.deadline - time.monotonic())
        if limit <= 0:
            raise InferenceTimeoutError("the request's deadline passed before it could be sent")
        slot = self._slot_for(request)
        call = self._kind.call(request, self._facts, slot)
        if slot is not None:
            self._slot_of_request[request.request_id] = slot
        text = TextStream(request.params, request.block_stop, admitted)
        last = StreamChunk()
        logprobs: list[float] = []
        generated = 0
        first: float | None = None
        finish: FinishReason | None = None
        engine_finish: FinishReason | None = None
        try:
            async with asyncio.timeout(limit), self._http.stream(call.path, call.body) as events:
                async for event in events:
                    chunk = self._kind.read(event)
                    _merge(last, chunk)
                    if chunk.tokens or chunk.text:
                        if first is None:
                            first = time.monotonic()
                        generated += chunk.tokens
                        logprobs.extend(chunk.logprobs)
                    if chunk.finish is not None:
                        engine_finish = _ENGINE_FINISH.get(chunk.finish, "stop")
                    if chunk.text and finish is None:
                        finish = text.feed(chunk.text.encode(), generated, time.monotonic())
                        if request.stream:
                            delta = text.delta()
                            if delta:
                                request.sink.emit(TokenEvent(request.request_id, delta))
                    # A stop found here ends the call (closing the connection
                    # stops the engine); at max_tokens the engine stops by
                    # itself, and its last events carry the usage figures.
                    if finish is not None and finish != "length":
                        break
                    if chunk.finished:
                        break
        except TimeoutError as exc:
            raise InferenceTimeoutError(
                f"the remote engine did not finish within {limit:.0f} s",
                {"model_id": self.model_id},
            ) from exc
        now = time.monotonic()
        reason: FinishReason = finish or engine_finish or "stop"
        rest = text.close(reason)
        if request.stream and rest:
            request.sink.emit(TokenEvent(request.request_id, rest))
        if last.slot is not None and request.group is not None:
            self._slot_of_group[request.group] = last.slot
        first_at = first if first is not None else now
        mean = sum(logprobs) / len(logprobs) if logprobs else -math.inf
        completion_tokens = last.completion_tokens or generated
        return GenerationResult(
            request_id=request.request_id,
            text=text.text,
            completion_tokens=completion_tokens,
            prompt_tokens=last.prompt_tokens or 0,
            cached_prompt_tokens=last.cached_tokens or 0,
            confidence=math.exp(mean) if logprobs else 0.0,
            mean_logprob=mean if logprobs else 0.0,
            finish_reason=reason,
            queue_ms=(admitted - submitted) * 1000.0,
            # The engine's own timings where it reports them; else measured here.
            prompt_ms=last.prompt_ms if last.prompt_ms is not None else (first_at - admitted) * 1e3,
            decode_ms=last.decode_ms if last.decode_ms is not None else (now - first_at) * 1e3,
            first_token_ms=(first_at - submitted) * 1000.0,
            total_ms=(now - submitted) * 1000.0,
            used_fim=call.used_fim,
            snippets_used=call.snippets_used,
        )


def _merge(into: StreamChunk, chunk: StreamChunk) -> None:
    """Keep the latest figure of each kind an event reported."""
    for name in (
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "prompt_ms",
        "decode_ms",
        "slot",
    ):
        value = getattr(chunk, name)
        if value is not None:
            setattr(into, name, value)
