"""Batch inference: many requests in one call, stored and retrievable."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from ai_ide import wire as s
from engine.engine import Engine
from engine.errors import InvalidRequestError, ModelNotFoundError
from lsp_server.sidecar.deps import CallerDep, EngineDep, ServicesDep, checked_model_id
from lsp_server.sidecar.errors import error_object
from lsp_server.sidecar.routes.tasks import run_task
from services.batch import BatchItem, ItemOutcome, batch_status, run_items
from services.composition import Services

router = APIRouter(prefix="/batch", tags=["batch"])


def _validate(engine: Engine, body: s.BatchRequestBody) -> None:
    ids = [item.id for item in body.requests]
    if len(set(ids)) != len(ids):
        raise InvalidRequestError("requests.id", "request ids must be unique within a batch")
    for index, item in enumerate(body.requests):
        try:
            checked_model_id(engine, item.model_id)
        except ModelNotFoundError as exc:
            # The whole batch is refused before any item runs: say which item.
            exc.details.update(field=f"requests[{index}].model_id", request_id=item.id)
            raise


def _item_result(outcome: ItemOutcome) -> s.BatchResultBody:
    if outcome.error is None:
        return s.BatchResultBody(
            request_id=outcome.id,
            status="success",
            result=outcome.result,
            processing_time_ms=round(outcome.processing_time_ms, 2),
        )
    error = outcome.error
    return s.BatchResultBody(
        request_id=outcome.id,
        status="error",
        error=s.ErrorBody.model_validate(error_object(error, outcome.id)),
        processing_time_ms=round(outcome.processing_time_ms, 2),
    )


async def execute_batch(
    engine: Engine,
    services: Services,
    batch_id: str,
    body: s.BatchRequestBody,
    caller: str | None,
) -> s.BatchResponse:
    """Run a batch, store its response and publish ``batch_completed``."""
    started = time.monotonic()

    def runner(item: s.BatchCompletion | s.BatchGeneration | s.BatchRefactor) -> BatchItem:
        model_id = engine.resolve_model(item.model_id)

        async def run() -> dict[str, Any]:
            _, _, result = await run_task(engine, item, model_id, caller)
            return result

        return BatchItem(item.id, model_id, run)

    services.batches.track(batch_id, len(body.requests))
    try:
        outcomes = await run_items(
            [runner(item) for item in body.requests],
            parallel=body.options.parallel_execution,
            max_concurrent=body.options.max_concurrent,
            timeout_seconds=body.options.timeout_seconds,
            on_finished=lambda _: services.batches.advance(batch_id),
        )
    finally:
        services.batches.forget(batch_id)
    succeeded = sum(1 for o in outcomes if o.error is None)
    status = batch_status(outcomes)
    response = s.BatchResponse(
        batch_id=batch_id,
        status=status,
        results=[_item_result(o) for o in outcomes],
        summary=s.BatchSummary(
            total_requests=len(outcomes),
            successful_requests=succeeded,
            failed_requests=len(outcomes) - succeeded,
            average_processing_time_ms=round(
                sum(o.processing_time_ms for o in outcomes) / len(outcomes), 2
            ),
        ),
        processing_time_ms=round((time.monotonic() - started) * 1000.0, 2),
    )
    await asyncio.to_thread(
        services.batches.finish, batch_id, caller, status, response.model_dump(mode="json")
    )
    return response


def register_jobs(engine: Engine, services: Services) -> None:
    """Let background batches run (and re-run after a restart) in this process."""

    async def batch_job(payload: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = s.BatchRequestBody.model_validate(payload["body"])
        response = await execute_batch(engine, services, payload["batch_id"], body, owner)
        return response.model_dump(mode="json")

    services.jobs.register("batch", batch_job)


@router.post(
    "/inference",
    response_model=s.BatchResponse,
    summary="Run many inference requests",
    responses={202: {"model": s.BatchResponse, "description": "accepted (options.async)"}},
)
async def batch_inference(
    body: s.BatchRequestBody, engine: EngineDep, services: ServicesDep, caller: CallerDep
) -> Response | s.BatchResponse:
    """Completion, generation and refactoring requests with their own ids and models.

    ``options.async`` returns 202 at once; the result is at ``status_url`` and a
    ``batch_completed`` webhook event announces it.
    """
    _validate(engine, body)
    background = body.options.async_
    batch_id = await asyncio.to_thread(services.batches.create, caller.id, background)
    if not background:
        return await execute_batch(engine, services, batch_id, body, caller.id)
    payload = {"batch_id": batch_id, "body": body.model_dump(mode="json", by_alias=True)}
    await services.jobs.submit("batch", payload, caller.id)
    status_url = f"/v1/ai/batch/{batch_id}"
    accepted = s.BatchResponse(batch_id=batch_id, status="running", status_url=status_url)
    return JSONResponse(
        accepted.model_dump(exclude_none=True), status_code=202, headers={"Location": status_url}
    )


@router.get("/{batch_id}", response_model=s.BatchResponse, summary="A stored batch")
async def get_batch(
    batch_id: Annotated[str, Path(max_length=64)], services: ServicesDep, caller: CallerDep
) -> s.BatchResponse:
    """The batch's response once finished, or its status (and progress) while running."""
    status, response = await asyncio.to_thread(services.batches.get, batch_id, caller.id)
    if response is None:
        progress = services.batches.progress(batch_id) if status == "running" else None
        return s.BatchResponse(
            batch_id=batch_id,
            status=status,
            progress=None
            if progress is None
            else s.BatchProgress(finished_requests=progress[0], total_requests=progress[1]),
        )
    return s.BatchResponse.model_validate(response)
