"""Inference: code completion (plain and streamed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from engine.completion import CompletionRequest, CompletionResult
from engine.engine import Engine
from engine.errors import EngineError
from engine.generation import Priority, SamplingParams
from lsp_server.sidecar import convert
from lsp_server.sidecar import schemas as s
from lsp_server.sidecar.deps import checked_model_id, get_engine
from lsp_server.sidecar.errors import now_rfc3339, request_id_of

router = APIRouter(prefix="/inference", tags=["inference"])

EngineDep = Annotated[Engine, Depends(get_engine)]


def to_engine_request(body: s.CompletionRequestBody, model_id: str) -> CompletionRequest:
    """Translate the API body into the engine's completion request."""
    p = body.parameters
    return CompletionRequest(
        code=body.context.code,
        cursor=(
            body.context.cursor_position
            if body.context.cursor_position is not None
            else len(body.context.code)
        ),
        language=body.context.language,
        file_path=body.context.file_path,
        model_id=model_id,
        params=SamplingParams(
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            frequency_penalty=p.frequency_penalty,
            presence_penalty=p.presence_penalty,
            seed=p.seed,
            stop=tuple(x for x in p.stop_sequences if x),
        ),
        priority=Priority.NORMAL,
        stream=body.options.stream,
        alternatives=p.n - 1,
        use_cache=body.options.cache,
        wait_for_load=False,
    )


def _sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/completion",
    response_model=s.CompletionResponse,
    summary="Complete code at a cursor",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def completion(
    body: s.CompletionRequestBody, request: Request, engine: EngineDep
) -> s.CompletionResponse | StreamingResponse:
    """Fill-in-the-middle completion; ``options.stream`` answers with Server-Sent Events."""
    model_id = checked_model_id(engine, body.model_id or engine.default_model_id())
    engine_request = to_engine_request(body, model_id)
    if not body.options.stream:
        result = await engine.complete(engine_request)
        return convert.to_completion_response(result)
    request_id = request_id_of(request)

    async def events() -> AsyncIterator[bytes]:
        try:
            async for item in engine.stream_complete(engine_request):
                if isinstance(item, CompletionResult):
                    yield _sse("done", convert.to_completion_response(item).model_dump())
                else:
                    yield _sse("token", {"text": item})
        except EngineError as exc:
            yield _sse(
                "error",
                {
                    "error": {
                        "code": exc.code,
                        "message": exc.message,
                        "details": exc.details,
                        "timestamp": now_rfc3339(),
                        "request_id": request_id,
                    }
                },
            )

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
