"""Inference: code completion (plain, streamed, async) and code generation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from ai_ide import wire as s
from ai_ide.wire import DOCUMENT_HEADER, PRIORITY_HEADER
from engine.codegen.prompt import CodeGenRequest
from engine.completion.pipeline import CompletionRequest, CompletionResult
from engine.engine import Engine
from engine.errors import EngineError, InvalidRequestError, UnsupportedLanguageError
from engine.languages import all_languages
from engine.refactor import RefactorRequest
from engine.runtime.messages import Priority, SamplingParams
from lsp_server.sidecar import convert
from lsp_server.sidecar.deps import Caller, CallerDep, EngineDep, ServicesDep, checked_model_id
from lsp_server.sidecar.errors import error_object, request_id_of
from services.jobs import JobService

router = APIRouter(prefix="/inference", tags=["inference"])


def sampling(p: s.CompletionParameters | s.GenerationParameters) -> SamplingParams:
    """The engine's sampling parameters from an API body's ``parameters``."""
    return SamplingParams(
        max_tokens=p.max_tokens,
        temperature=p.temperature,
        top_p=p.top_p,
        frequency_penalty=p.frequency_penalty,
        presence_penalty=p.presence_penalty,
        seed=p.seed,
        stop=tuple(x for x in p.stop_sequences if x),
    )


def to_engine_request(
    engine: Engine, body: s.CompletionRequestBody, caller: str | None
) -> CompletionRequest:
    """Translate the API body into the engine's completion request."""
    model_id = checked_model_id(engine, body.model_id)
    p = body.parameters
    code = body.context.code
    cursor = body.context.cursor_position
    return CompletionRequest(
        code=code,
        cursor=cursor if cursor is not None else len(code),
        language=body.context.language,
        file_path=body.context.file_path,
        model_id=model_id,
        params=sampling(p),
        priority=Priority.NORMAL,
        stream=body.options.stream,
        alternatives=p.n - 1,
        use_cache=body.options.cache,
        wait_for_load=False,
        caller=caller,
    )


async def run_completion(
    engine: Engine, body: s.CompletionRequestBody, caller: str | None, *, background: bool = False
) -> s.CompletionResponse:
    """A completion request to its documented response body."""
    request = to_engine_request(engine, body, caller)
    if background:
        # Jobs wait for a model that is loading instead of failing with 503.
        request = replace(request, wait_for_load=True)
    return convert.to_completion_response(await engine.complete(request))


def to_codegen_request(
    engine: Engine, body: s.GenerationRequestBody, caller: str | None, background: bool
) -> CodeGenRequest:
    """Translate the API body into the engine's generation request."""
    model_id = checked_model_id(engine, body.model_id)
    p = body.parameters
    return CodeGenRequest(
        prompt=body.prompt,
        language=engine.resolve_language(body.context.language, body.context.file_path),
        existing_code=body.context.existing_code,
        model_id=model_id,
        params=sampling(p),
        caller=caller,
        wait_for_load=background,
    )


async def run_generation(
    engine: Engine, body: s.GenerationRequestBody, caller: str | None, *, background: bool = False
) -> s.GenerationResponse:
    """A generation request to its documented response body."""
    result = await engine.generate_code(to_codegen_request(engine, body, caller, background))
    return convert.to_generation_response(result)


def guess_language(engine: Engine, code: str) -> str | None:
    """The one supported language whose grammar parses ``code`` without errors, if unique.

    The documented SDK examples send code without ``context.language``; a
    snippet such as ``fn f() { println!("x"); }`` is valid in one grammar only.
    Code several grammars accept (``x = 1``) stays ambiguous: None.
    """
    source = code.encode("utf-8", "surrogatepass")
    clean = [
        language.id
        for language in all_languages()
        if not engine.parsers.parse(language.id, source).root_node.has_error
    ]
    return clean[0] if len(clean) == 1 else None


def to_refactor_request(
    engine: Engine, body: s.RefactorRequestBody, guessed_language: str | None = None
) -> RefactorRequest:
    """Translate the API body into the engine's refactoring request."""
    language = engine.resolve_language(body.context.language, body.context.file_path)
    if language is None and body.context.language is None and body.context.file_path is None:
        language = guessed_language
    if language is None:
        raise UnsupportedLanguageError(
            "context.language is missing or not supported (rust, python, typescript, tsx, "
            "javascript, go, java)",
            {"field": "context.language"},
        )
    return RefactorRequest(
        code=body.code,
        language=language,
        operation=body.operation,
        selection_start=body.context.selection_start,
        selection_end=body.context.selection_end,
        new_name=body.new_name,
        safety_checks=body.safety_checks,
        file_path=body.context.file_path,
    )


async def run_refactor(
    engine: Engine, body: s.RefactorRequestBody, caller: str | None, *, background: bool = False
) -> s.RefactorResponse:
    """A refactoring request to its documented response body."""
    model_id = checked_model_id(engine, body.model_id)
    if "\x00" in body.code:
        raise InvalidRequestError("code", "code must not contain NUL characters")
    guessed = None
    if body.context.language is None and body.context.file_path is None:
        # Seven parses of up to a megabyte: off the event loop.
        guessed = await asyncio.to_thread(guess_language, engine, body.code)
    model_used, result = await engine.refactor(
        to_refactor_request(engine, body, guessed),
        model_id=model_id,
        caller=caller,
        wait_for_load=background,
    )
    return convert.to_refactor_response(model_used, result)


def register_jobs(engine: Engine, jobs: JobService) -> None:
    """Let stored completion, generation and refactoring jobs run in this process."""

    async def completion(payload: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = s.CompletionRequestBody.model_validate(payload)
        response = await run_completion(engine, body, owner, background=True)
        return response.model_dump(mode="json")

    async def generation(payload: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = s.GenerationRequestBody.model_validate(payload)
        response = await run_generation(engine, body, owner, background=True)
        return response.model_dump(mode="json")

    async def refactoring(payload: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = s.RefactorRequestBody.model_validate(payload)
        response = await run_refactor(engine, body, owner, background=True)
        return response.model_dump(mode="json")

    jobs.register("completion", completion)
    jobs.register("generation", generation)
    jobs.register("refactor", refactoring)


# The request texts of each job kind, by attribute path (their API field names).
_TEXT_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "completion": (("context", "code"),),
    "generation": (("prompt",), ("context", "existing_code")),
    "refactor": (("code",),),
}


async def accept_job(
    engine: Engine, jobs: JobService, kind: str, body: s.StrictModel, caller: Caller
) -> JSONResponse:
    """Store a request as a job: 202 with where to find its result."""
    # Validate the model now, so a bad id is a 404 today, not a failed job later.
    model_id = getattr(body, "model_id", None)
    if model_id is not None:
        checked_model_id(engine, model_id)
    # And the texts, as the same request without async is checked (a 400 now,
    # not a job that fails); what needs the model (the context length) waits.
    for path in _TEXT_FIELDS.get(kind, ()):
        value: Any = body
        for name in path:
            value = getattr(value, name)
        if isinstance(value, str) and "\x00" in value:
            field = ".".join(path)
            raise InvalidRequestError(field, f"{field} must not contain NUL characters")
    payload = body.model_dump(mode="json", by_alias=True)
    payload["options"]["async"] = False
    job = await jobs.submit(kind, payload, caller.id)
    status_url = f"/v1/ai/jobs/{job.id}"
    accepted = s.JobAccepted(job_id=job.id, status=job.status, status_url=status_url)
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": status_url})


def editor_hints(
    http_request: Request, request: CompletionRequest, caller: Caller
) -> CompletionRequest:
    """Apply the hints a language server sharing this engine sends with a keystroke.

    ``X-AI-IDE-Priority: interactive`` schedules it before REST and batch work;
    ``X-AI-IDE-Document`` makes a newer request for the same document (of the
    same caller) cancel the older one.
    """
    if http_request.headers.get(PRIORITY_HEADER, "").lower() == "interactive":
        request = replace(request, priority=Priority.INTERACTIVE)
    document = http_request.headers.get(DOCUMENT_HEADER)
    if document:
        request = replace(request, document_key=f"{caller.id}|{document[:2048]}")
    return request


def _sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/completion",
    response_model=s.CompletionResponse,
    summary="Complete code at a cursor",
    responses={
        200: {"content": {"text/event-stream": {}}},
        202: {"model": s.JobAccepted, "description": "accepted as a job (options.async)"},
    },
)
async def completion(
    body: s.CompletionRequestBody,
    request: Request,
    engine: EngineDep,
    services: ServicesDep,
    caller: CallerDep,
) -> Response | s.CompletionResponse:
    """Fill-in-the-middle completion.

    ``options.stream`` answers with Server-Sent Events (``token`` deltas, then
    ``done`` with the full response); ``options.async`` answers 202 with a job.
    """
    if body.options.async_ and body.options.stream:
        raise InvalidRequestError(
            "options.stream", "a request is either streamed or run as a job (options.async)"
        )
    if body.options.async_:
        return await accept_job(engine, services.jobs, "completion", body, caller)
    if not body.options.stream:
        return await run_completion(engine, body, caller.id)
    engine_request = editor_hints(request, to_engine_request(engine, body, caller.id), caller)
    request_id = request_id_of(request)
    stream = engine.stream_complete(engine_request)
    # An error before the first event (a bad request, a model that is loading
    # or failed, a full queue) is answered with its own status code, like the
    # same request without streaming; only later ones travel as an SSE event.
    first = await anext(stream)

    def encode(item: str | CompletionResult) -> bytes:
        if isinstance(item, CompletionResult):
            return _sse("done", convert.to_completion_response(item).model_dump())
        return _sse("token", {"text": item})

    async def events() -> AsyncIterator[bytes]:
        try:
            yield encode(first)
            async for item in stream:
                yield encode(item)
        except EngineError as exc:
            yield _sse("error", {"error": error_object(exc, request_id)})
        finally:
            await stream.aclose()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/generation",
    response_model=s.GenerationResponse,
    summary="Generate code from a description",
    responses={202: {"model": s.JobAccepted, "description": "accepted as a job"}},
)
async def generation(
    body: s.GenerationRequestBody, engine: EngineDep, services: ServicesDep, caller: CallerDep
) -> Response | s.GenerationResponse:
    """Generate code: chat models through their chat template, base models from a comment."""
    if body.options.async_:
        return await accept_job(engine, services.jobs, "generation", body, caller)
    return await run_generation(engine, body, caller.id)


@router.post(
    "/refactor",
    response_model=s.RefactorResponse,
    summary="Refactor code with safety checks",
    responses={202: {"model": s.JobAccepted, "description": "accepted as a job"}},
)
async def refactoring(
    body: s.RefactorRequestBody, engine: EngineDep, services: ServicesDep, caller: CallerDep
) -> Response | s.RefactorResponse:
    """extract_variable, extract_method, rename or optimize_performance.

    tree-sitter decides what the selection means; the model proposes names and
    rewrites; every result is re-parsed and checked, and the response lists
    the checks that ran.
    """
    if body.options.async_:
        return await accept_job(engine, services.jobs, "refactor", body, caller)
    return await run_refactor(engine, body, caller.id)
