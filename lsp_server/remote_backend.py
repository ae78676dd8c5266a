"""A backend that uses another running ``ai-ide`` over its REST API.

When the sidecar port is already served by an ``ai-ide``, a new language
server uses that process's engine instead of loading every model a second
time. Completions are streamed so that cancelling one (a newer keystroke, a
``$/cancelRequest``) closes the connection and stops the remote generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from typing import Any

import httpx

from ai_ide.wire import DOCUMENT_HEADER, PRIORITY_HEADER
from engine.codegen.prompt import CodeGenRequest, CodeGenResult
from engine.completion.pipeline import Completion, CompletionRequest, CompletionResult
from engine.documents import DocumentStore
from engine.errors import EngineError
from engine.models.registry import ModelStatus, RegistryEvent, UnloadResult
from engine.refactor import Alternative, RefactorRequest, RefactorResult, SafetyCheck, TextEdit
from engine.runtime.messages import GenerationResult, Priority
from lsp_server.backend import Listener, ModelSummary, StatusReport

log = logging.getLogger(__name__)


class RemoteError(EngineError):
    """An error envelope returned by the remote server."""

    def __init__(self, code: str, status: int, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, details)
        self.code = code
        self.http_status = status


def _error_from(response_status: int, body: Any) -> RemoteError:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    return RemoteError(
        str(error.get("code", "REMOTE_ERROR")),
        response_status,
        str(error.get("message", f"remote server answered {response_status}")),
        dict(error.get("details") or {}),
    )


def _generation(
    request_id: str, text: str, metadata: dict[str, Any], confidence: float
) -> GenerationResult:
    """A result record from the remote metadata (timings as the remote measured them)."""
    total = float(metadata.get("processing_time_ms", 0.0))
    return GenerationResult(
        request_id=request_id,
        text=text,
        completion_tokens=int(metadata.get("completion_tokens", 0)),
        prompt_tokens=int(metadata.get("prompt_tokens", 0)),
        cached_prompt_tokens=int(metadata.get("cached_prompt_tokens", 0)),
        confidence=confidence,
        mean_logprob=math.log(confidence) if confidence > 0 else float("-inf"),
        finish_reason=metadata.get("finish_reason", "stop"),
        queue_ms=0.0,
        prompt_ms=0.0,
        decode_ms=total,
        first_token_ms=0.0,
        total_ms=total,
        used_fim=bool(metadata.get("used_fim", False)),
    )


async def probe(base_url: str, wait_seconds: float = 1.0) -> bool:
    """True when ``base_url`` is an ai-ide REST API (answering, or asking for a key)."""
    try:
        async with httpx.AsyncClient(timeout=wait_seconds) as client:
            response = await client.get(f"{base_url}/v1/ai/health")
    except httpx.HTTPError:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    if response.status_code == 200:
        return isinstance(body, dict) and "services" in body
    return response.status_code == 401 and isinstance(body, dict) and "error" in body


class RemoteBackend:
    """The language server's engine operations, served by another ai-ide."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.documents = DocumentStore()
        headers = {"X-API-Key": api_key} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=f"{self.base_url}/v1/ai", headers=headers, timeout=300.0
        )
        self._listeners: list[Listener] = []

    @property
    def description(self) -> str:
        """The shared server."""
        return f"shared server {self.base_url}"

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self._client.post(path, json=body)
        return self._json(response)

    async def _get(self, path: str) -> dict[str, Any]:
        return self._json(await self._client.get(path))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not response.is_success:
            raise _error_from(response.status_code, body)
        return body if isinstance(body, dict) else {}

    async def default_model(self) -> str:
        """The remote's first loaded model, else its first model."""
        models = (await self._get("/models"))["models"]
        for model in models:
            if model["status"] == "loaded":
                return str(model["id"])
        return str(models[0]["id"])

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        """Stream a completion; leaving early closes the stream and stops the generation."""
        body = {
            "model_id": request.model_id,
            "context": {
                "language": request.language,
                "code": request.code,
                "cursor_position": request.cursor,
                "file_path": request.file_path,
            },
            "parameters": {
                "max_tokens": request.params.max_tokens,
                "temperature": request.params.temperature,
                "top_p": request.params.top_p,
                "stop_sequences": list(request.params.stop),
            },
            "options": {"stream": True},
        }
        headers = {}
        if request.priority == Priority.INTERACTIVE:
            headers[PRIORITY_HEADER] = "interactive"
        if request.document_key is not None:
            headers[DOCUMENT_HEADER] = request.document_key
        async with self._client.stream(
            "POST", "/inference/completion", json=body, headers=headers
        ) as response:
            if not response.is_success:
                await response.aread()
                raise _error_from(response.status_code, self._safe_json(response))
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("done", "error"):
                    data = json.loads(line[5:])
                    if event == "error":
                        raise _error_from(500, data)
                    return self._completion_result(data)
        raise EngineError("the shared server closed the stream without a result")

    @staticmethod
    def _safe_json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return {}

    @staticmethod
    def _completion_result(data: dict[str, Any]) -> CompletionResult:
        body = data["completion"]
        metadata = body["metadata"]
        start, end = metadata.get("replace_range", (0, 0))
        generation = _generation("remote", body["text"], metadata, float(body["confidence"]))
        completion = Completion(
            text=body["text"],
            raw_text=body["text"],
            replace_start=int(start),
            replace_end=int(end),
            confidence=float(body["confidence"]),
            generation=generation,
        )
        return CompletionResult(
            model_id=str(metadata["model_used"]),
            completion=completion,
            alternatives=[],
            processing_time_ms=float(metadata.get("processing_time_ms", 0.0)),
            context_snippets=0,
            cached=bool(metadata.get("cached", False)),
        )

    async def generate_code(self, request: CodeGenRequest) -> CodeGenResult:
        """Generation through the shared server."""
        data = await self._post(
            "/inference/generation",
            {
                "model_id": request.model_id,
                "prompt": request.prompt,
                "context": {"language": request.language, "existing_code": request.existing_code},
                "parameters": {
                    "max_tokens": request.params.max_tokens,
                    "temperature": request.params.temperature,
                },
            },
        )
        body = data["generation"]
        metadata = body["metadata"]
        confidence = float(body["confidence"])
        return CodeGenResult(
            model_id=str(metadata["model_used"]),
            text=body["text"],
            confidence=confidence,
            prompt_style=str(metadata.get("prompt_style", "comment")),
            generation=_generation("remote", body["text"], metadata, confidence),
            processing_time_ms=float(metadata.get("processing_time_ms", 0.0)),
        )

    async def refactor(
        self, request: RefactorRequest, model_id: str | None, priority: Priority
    ) -> RefactorResult:
        """Refactoring through the shared server (its checks run there)."""
        data = await self._post(
            "/inference/refactor",
            {
                "model_id": model_id,
                "code": request.code,
                "operation": request.operation,
                "context": {
                    "language": request.language,
                    "file_path": request.file_path,
                    "selection_start": request.selection_start,
                    "selection_end": request.selection_end,
                },
                "safety_checks": request.safety_checks,
                "new_name": request.new_name,
            },
        )
        body = data["refactoring"]
        return RefactorResult(
            type=body["type"],
            original_code=body["original_code"],
            refactored_code=body["refactored_code"],
            edits=[TextEdit(e["start"], e["end"], e["new_text"]) for e in body["edits"]],
            confidence=float(body["confidence"]),
            safety_score=float(body["safety_score"]),
            explanation=body["explanation"],
            checks=[SafetyCheck(c["name"], c["passed"], c["detail"]) for c in body["checks"]],
            alternatives=[
                Alternative(a["type"], a["code"], a["confidence"], a["safety_score"])
                for a in data.get("alternatives", [])
            ],
        )

    async def load(self, model_id: str) -> str:
        """Ask the shared server to load a model and follow it until it settles."""
        await self._post(f"/models/{model_id}/load", {"priority": "high"})
        last: tuple[str, float] = ("", -1.0)
        while True:
            models = (await self._get("/models"))["models"]
            entry = next((m for m in models if m["id"] == model_id), None)
            if entry is None:
                raise RemoteError("MODEL_NOT_FOUND", 404, f"model '{model_id}' vanished", {})
            status: ModelStatus = entry["status"]
            current = (status, float(entry.get("load_progress", 0.0)))
            if current != last:
                last = current
                self._emit(
                    RegistryEvent(
                        model_id,
                        "progress" if status == "loading" else "status",
                        status,
                        progress=current[1],
                        error=entry.get("error"),
                    )
                )
            if status != "loading":
                return status
            await asyncio.sleep(0.2)

    async def unload(self, model_id: str) -> UnloadResult:
        """Unload on the shared server."""
        data = await self._post(f"/models/{model_id}/unload")
        self._emit(RegistryEvent(model_id, "status", "available"))
        return UnloadResult(model_id, float(data["memory_freed_mb"]), float(data["unload_time_ms"]))

    async def status(self) -> StatusReport:
        """Health and models of the shared server."""
        health = await self._get("/health")
        models = (
            await self._get(
                "/models",
            )
        )["models"]
        summaries = []
        for model in models:
            metrics: dict[str, Any] = {}
            with contextlib.suppress(EngineError):
                metrics = (await self._get(f"/monitoring/models/{model['id']}/metrics"))["metrics"]
            summaries.append(
                ModelSummary(
                    id=model["id"],
                    name=model["name"],
                    status=model["status"],
                    memory_usage_mb=model.get("memory_usage_mb"),
                    load_progress=float(model.get("load_progress", 0.0)),
                    error=model.get("error"),
                    inference_count=int(metrics.get("inference_count", 0)),
                    average_inference_time_ms=metrics.get("average_inference_time_ms"),
                    success_rate=metrics.get("success_rate"),
                    cache_hit_rate=metrics.get("cache_hit_rate"),
                )
            )
        engine = health["services"]["inference_engine"]
        return StatusReport(
            str(health["status"]),
            summaries,
            int(engine["active_requests"]),
            int(engine["queue_length"]),
        )

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
