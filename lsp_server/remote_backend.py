"""A backend that uses another running ``ai-ide`` over its REST API, through the Python SDK.

When the sidecar port is already served by an ``ai-ide``, a new language
server uses that process's engine instead of loading every model a second
time. Completions are streamed so that cancelling one (a newer keystroke, a
``$/cancelRequest``) closes the connection and stops the remote generation.
Every request is built from the wire contract by the SDK; the engine records
returned here carry the figures the remote server reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any, cast

from ai_ide import wire
from ai_ide.client import AsyncAIIDE
from ai_ide.client.errors import APIConnectionError, APIStatusError, UnauthorizedError
from engine.codegen.prompt import CodeGenRequest, CodeGenResult
from engine.completion.pipeline import Completion, CompletionRequest, CompletionResult
from engine.documents import DocumentStore
from engine.errors import EngineError
from engine.models.registry import ModelStatus, RegistryEvent, UnloadResult
from engine.refactor import Alternative, RefactorRequest, RefactorResult, SafetyCheck, TextEdit
from engine.runtime.messages import FinishReason, GenerationResult, Priority
from lsp_server.backend import Listener, ModelSummary, StatusReport

log = logging.getLogger(__name__)


class RemoteError(EngineError):
    """An error envelope returned by the remote server (or no answer at all)."""

    def __init__(self, code: str, status: int, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, details)
        self.code = code
        self.http_status = status


@contextlib.asynccontextmanager
async def _remote_errors() -> Any:
    """SDK exceptions as engine errors, which the LSP handlers already map."""
    try:
        yield
    except APIStatusError as exc:
        raise RemoteError(exc.code, exc.status_code, exc.message, exc.details) from exc
    except APIConnectionError as exc:
        raise RemoteError("CONNECTION_FAILED", 503, f"shared server: {exc}", {}) from exc


def _generation(
    request_id: str,
    text: str,
    metadata: wire.CompletionMetadata | wire.GenerationMetadata,
    confidence: float,
    *,
    used_fim: bool = False,
) -> GenerationResult:
    """A result record from the remote metadata (timings as the remote measured them)."""
    timings = metadata.timings
    return GenerationResult(
        request_id=request_id,
        text=text,
        completion_tokens=metadata.completion_tokens,
        prompt_tokens=metadata.prompt_tokens,
        cached_prompt_tokens=metadata.cached_prompt_tokens,
        confidence=confidence,
        # confidence is exp(mean log-probability) by definition (rounded by the server).
        mean_logprob=math.log(confidence) if confidence > 0 else float("-inf"),
        finish_reason=cast(FinishReason, metadata.finish_reason),
        queue_ms=timings.queue_ms,
        prompt_ms=timings.prompt_ms,
        decode_ms=timings.decode_ms,
        first_token_ms=timings.first_token_ms,
        total_ms=timings.total_ms,
        used_fim=used_fim,
    )


async def probe(base_url: str, wait_seconds: float = 1.0) -> bool:
    """True when ``base_url`` is an ai-ide REST API (answering, or asking for a key)."""
    # Whatever credentials resolve: an ai-ide answers 200, or 401 with its envelope.
    client = AsyncAIIDE(base_url=base_url, timeout=wait_seconds, max_retries=0)
    try:
        await client.ai.health()
    except UnauthorizedError as exc:
        return exc.code == "UNAUTHORIZED"  # an ai-ide envelope, not some other server's 401
    except (APIStatusError, APIConnectionError, ValueError):
        return False
    finally:
        await client.close()
    return True


class RemoteBackend:
    """The language server's engine operations, served by another ai-ide."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.documents = DocumentStore()
        # No retries: an editor request is stale by the time a Retry-After
        # passes, and the language server reports errors itself.
        self._client = AsyncAIIDE(
            api_key=api_key, base_url=self.base_url, timeout=300.0, max_retries=0
        )
        self._listeners: list[Listener] = []

    @property
    def description(self) -> str:
        """The shared server."""
        return f"shared server {self.base_url}"

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    def context_changed(self) -> None:
        """Nothing to warm: the remote server's engine keeps no state for this editor."""

    async def default_model(self) -> str:
        """The remote's first loaded model, else its first model."""
        async with _remote_errors():
            models = [m async for m in self._client.ai.models.iter()]
        for model in models:
            if model.status == "loaded":
                return model.id
        return models[0].id

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        """Stream a completion; leaving early closes the stream and stops the generation."""
        headers = {}
        if request.priority == Priority.INTERACTIVE:
            headers[wire.PRIORITY_HEADER] = "interactive"
        if request.document_key is not None:
            headers[wire.DOCUMENT_HEADER] = request.document_key
        async with _remote_errors():
            stream = await self._client.ai.inference.completion(
                model_id=request.model_id,
                context=wire.CompletionContext(
                    language=request.language,
                    code=request.code,
                    cursor_position=request.cursor,
                    file_path=request.file_path,
                ),
                parameters=wire.CompletionParameters(
                    max_tokens=request.params.max_tokens,
                    temperature=request.params.temperature,
                    top_p=request.params.top_p,
                    stop_sequences=list(request.params.stop),
                ),
                stream=True,
                extra_headers=headers,
            )
            async with stream:
                response = await stream.final()
        request_id = stream.response.headers.get(wire.REQUEST_ID_HEADER, "")
        return self._completion_result(response, request_id)

    @staticmethod
    def _completion_result(data: wire.CompletionResponse, request_id: str) -> CompletionResult:
        body = data.completion
        metadata = body.metadata
        start, end = metadata.replace_range
        completion = Completion(
            text=body.text,
            raw_text=metadata.raw_text,
            replace_start=start,
            replace_end=end,
            confidence=body.confidence,
            generation=_generation(
                request_id, metadata.raw_text, metadata, body.confidence, used_fim=metadata.used_fim
            ),
        )
        return CompletionResult(
            model_id=metadata.model_used,
            completion=completion,
            alternatives=[],  # one completion was asked for (parameters.n = 1)
            processing_time_ms=metadata.processing_time_ms,
            context_snippets=metadata.context_snippets,
            cached=metadata.cached,
        )

    async def generate_code(self, request: CodeGenRequest) -> CodeGenResult:
        """Generation through the shared server."""
        async with _remote_errors():
            data = await self._client.ai.inference.generation(
                model_id=request.model_id,
                prompt=request.prompt,
                context=wire.GenerationContext(
                    language=request.language, existing_code=request.existing_code
                ),
                parameters=wire.GenerationParameters(
                    max_tokens=request.params.max_tokens,
                    temperature=request.params.temperature,
                ),
            )
        body = data.generation
        metadata = body.metadata
        return CodeGenResult(
            model_id=metadata.model_used,
            text=body.text,
            confidence=body.confidence,
            prompt_style=metadata.prompt_style,
            generation=_generation("", body.text, metadata, body.confidence),
            processing_time_ms=metadata.processing_time_ms,
        )

    async def refactor(
        self, request: RefactorRequest, model_id: str | None, priority: Priority
    ) -> RefactorResult:
        """Refactoring through the shared server (its checks run there)."""
        fields: dict[str, Any] = {"new_name": request.new_name} if request.new_name else {}
        async with _remote_errors():
            data = await self._client.ai.inference.refactor(
                model_id=model_id,
                code=request.code,
                operation=request.operation,
                context=wire.RefactorContext(
                    language=request.language,
                    file_path=request.file_path,
                    selection_start=request.selection_start,
                    selection_end=request.selection_end,
                ),
                safety_checks=request.safety_checks,
                **fields,
            )
        body = data.refactoring
        return RefactorResult(
            type=body.type,
            original_code=body.original_code,
            refactored_code=body.refactored_code,
            edits=[TextEdit(e.start, e.end, e.new_text) for e in body.edits],
            confidence=body.confidence,
            safety_score=body.safety_score,
            explanation=body.explanation,
            checks=[SafetyCheck(c.name, c.passed, c.detail) for c in body.checks],
            alternatives=[
                Alternative(a.type, a.code, a.confidence, a.safety_score) for a in data.alternatives
            ],
        )

    async def load(self, model_id: str) -> str:
        """Ask the shared server to load a model and follow it until it settles."""
        last: tuple[str, float] = ("", -1.0)
        async with _remote_errors():
            await self._client.ai.models.load(model_id, priority="high")
            while True:
                try:
                    entry = await self._client.ai.models.get(model_id)
                except KeyError:
                    raise RemoteError(
                        "MODEL_NOT_FOUND", 404, f"model '{model_id}' vanished", {}
                    ) from None
                status: ModelStatus = entry.status
                current = (status, entry.load_progress)
                if current != last:
                    last = current
                    self._emit(
                        RegistryEvent(
                            model_id,
                            "progress" if status == "loading" else "status",
                            status,
                            progress=current[1],
                            error=entry.error,
                        )
                    )
                if status != "loading":
                    return status
                await asyncio.sleep(0.2)

    async def unload(self, model_id: str) -> UnloadResult:
        """Unload on the shared server."""
        async with _remote_errors():
            data = await self._client.ai.models.unload(model_id)
        self._emit(RegistryEvent(model_id, "status", "available"))
        return UnloadResult(model_id, data.memory_freed_mb, data.unload_time_ms)

    async def status(self) -> StatusReport:
        """Health and models of the shared server."""
        async with _remote_errors():
            health = await self._client.ai.health()
            models = [m async for m in self._client.ai.models.iter()]
        summaries = []
        for model in models:
            metrics: wire.MetricsBody | None = None
            with contextlib.suppress(EngineError):
                async with _remote_errors():
                    metrics = (await self._client.ai.monitoring.metrics(model.id)).metrics
            summaries.append(
                ModelSummary(
                    id=model.id,
                    name=model.name,
                    status=model.status,
                    memory_usage_mb=model.memory_usage_mb,
                    load_progress=model.load_progress,
                    error=model.error,
                    inference_count=metrics.inference_count if metrics else 0,
                    average_inference_time_ms=metrics.average_inference_time_ms
                    if metrics
                    else None,
                    success_rate=metrics.success_rate if metrics else None,
                    cache_hit_rate=metrics.cache_hit_rate if metrics else None,
                )
            )
        engine = health.services.inference_engine
        return StatusReport(health.status, summaries, engine.active_requests, engine.queue_length)

    def add_listener(self, listener: Listener) -> None:
        """Receive the status changes this backend observes."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop receiving events."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: RegistryEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("listener failed")
