"""What the language server needs from an engine, local or behind another ai-ide.

``LocalBackend`` wraps the in-process :class:`~engine.engine.Engine`.
``RemoteBackend`` (in :mod:`lsp_server.remote_backend`) talks to an ``ai-ide``
already serving the sidecar port, so several editors share one copy of each
model. Documents and their syntax trees always stay in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.codegen.prompt import CodeGenRequest, CodeGenResult
from engine.completion.pipeline import CompletionRequest, CompletionResult
from engine.documents import DocumentStore
from engine.engine import Engine
from engine.events import InferenceRecord
from engine.models.registry import RegistryEvent, UnloadResult
from engine.refactor import RefactorRequest, RefactorResult
from engine.runtime.messages import Priority
from services.metrics import MetricsRecorder

Listener = Callable[[RegistryEvent], None]


@dataclass(frozen=True)
class ModelSummary:
    """One model as an editor shows it."""

    id: str
    name: str
    status: str
    memory_usage_mb: float | None
    load_progress: float
    error: str | None
    inference_count: int
    average_inference_time_ms: float | None
    success_rate: float | None
    cache_hit_rate: float | None
    # This process's completions since it started: their prompt tokens and
    # how many of them the KV cache held (None: not known here, a remote engine).
    prompt_tokens: int | None = None
    cached_prompt_tokens: int | None = None


class PromptTally:
    """Prompt tokens of the engine's completions and those read from its KV cache, per model."""

    def __init__(self) -> None:
        self._totals: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()  # records are published on the engine's threads

    def add(self, record: InferenceRecord) -> None:
        """Count one finished inference (an engine record sink)."""
        if record.kind != "completion" or not record.prompt_tokens:
            return  # not a completion; failed, or answered without reading a prompt
        with self._lock:
            prompt, cached = self._totals.get(record.model_id, (0, 0))
            self._totals[record.model_id] = (
                prompt + record.prompt_tokens,
                cached + record.cached_prompt_tokens,
            )

    def of(self, model_id: str) -> tuple[int, int]:
        """(prompt tokens, of which cached) counted for ``model_id``."""
        with self._lock:
            return self._totals.get(model_id, (0, 0))


@dataclass(frozen=True)
class StatusReport:
    """Health and models, for ``ai-ide.showStatus``."""

    status: str
    models: list[ModelSummary]
    active_requests: int
    queue_length: int


class Backend(Protocol):
    """The engine operations language-server features call."""

    documents: DocumentStore

    @property
    def description(self) -> str:
        """Where inference runs ("in process", or the remote URL)."""

    async def default_model(self) -> str:
        """The model used when the editor names none."""

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        """Code completion at a cursor."""

    def context_changed(self) -> None:
        """A document was opened or edited: the last completion place's context may have moved."""

    async def generate_code(self, request: CodeGenRequest) -> CodeGenResult:
        """Code from a description."""

    async def refactor(
        self, request: RefactorRequest, model_id: str | None, priority: Priority
    ) -> RefactorResult:
        """A refactoring with safety checks."""

    async def load(self, model_id: str) -> str:
        """Load a model and wait for it; returns the final status."""

    async def unload(self, model_id: str) -> UnloadResult:
        """Unload a model."""

    async def status(self) -> StatusReport:
        """Health and every model's state and figures."""

    def add_listener(self, listener: Listener) -> None:
        """Receive model status and load progress (from any thread)."""

    def remove_listener(self, listener: Listener) -> None:
        """Stop receiving events."""


class LocalBackend:
    """The engine in this process."""

    def __init__(self, engine: Engine, metrics: MetricsRecorder) -> None:
        self.engine = engine
        self.metrics = metrics
        self.documents = engine.documents
        self.prompts = PromptTally()
        engine.records.subscribe(self.prompts.add)

    @property
    def description(self) -> str:
        """Inference runs here."""
        return "in process"

    async def default_model(self) -> str:
        """The configured, first loaded, or first catalog model."""
        return self.engine.default_model_id()

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        """Complete through the engine."""
        return await self.engine.complete(request)

    def context_changed(self) -> None:
        """Warm the last completion place's changed context (lowest priority)."""
        self.engine.context_changed()

    async def generate_code(self, request: CodeGenRequest) -> CodeGenResult:
        """Generate through the engine."""
        return await self.engine.generate_code(request)

    async def refactor(
        self, request: RefactorRequest, model_id: str | None, priority: Priority
    ) -> RefactorResult:
        """Refactor through the engine."""
        _, result = await self.engine.refactor(request, model_id=model_id, priority=priority)
        return result

    async def load(self, model_id: str) -> str:
        """Queue the load with high priority and wait for it."""
        await self.engine.load_model(model_id, priority="high")
        await self.engine.worker_for(model_id)
        return self.engine.model(model_id).status

    async def unload(self, model_id: str) -> UnloadResult:
        """Unload through the engine."""
        return await self.engine.unload_model(model_id)

    async def status(self) -> StatusReport:
        """Health and per-model figures from the engine's records."""
        health = self.engine.health()
        models = []
        for view in self.engine.list_models():
            metrics = self.metrics.metrics(view.spec.id)
            prompt_tokens, cached_prompt_tokens = self.prompts.of(view.spec.id)
            models.append(
                ModelSummary(
                    id=view.spec.id,
                    name=view.spec.name,
                    status=view.status,
                    memory_usage_mb=view.memory_usage_mb,
                    load_progress=view.load_progress,
                    error=view.error,
                    inference_count=metrics.inference_count,
                    average_inference_time_ms=metrics.average_inference_time_ms,
                    success_rate=metrics.success_rate,
                    cache_hit_rate=metrics.cache_hit_rate,
                    prompt_tokens=prompt_tokens,
                    cached_prompt_tokens=cached_prompt_tokens,
                )
            )
        return StatusReport(health.status, models, health.active_requests, health.queue_length)

    def add_listener(self, listener: Listener) -> None:
        """Registry events of the engine."""
        self.engine.add_listener(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop receiving registry events."""
        self.engine.remove_listener(listener)
