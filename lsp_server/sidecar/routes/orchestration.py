"""Multi-model orchestration."""

from __future__ import annotations

from fastapi import APIRouter

from ai_ide import wire as s
from lsp_server.sidecar.deps import CallerDep, EngineDep, checked_model_id
from lsp_server.sidecar.routes.tasks import run_task
from services.orchestration import ModelAnswer, orchestrate

router = APIRouter(prefix="/orchestration", tags=["orchestration"])


@router.post(
    "/inference", response_model=s.OrchestrationResponse, summary="Run a task on several models"
)
async def orchestration(
    body: s.OrchestrationRequestBody,
    engine: EngineDep,
    caller: CallerDep,
) -> s.OrchestrationResponse:
    """Run the task on each model (concurrently, or in order for ``fallback``) and choose.

    Models that are not loaded are loaded on demand; a model that fails gets
    its error in ``model_results`` and the others still count.
    """
    for model_id in body.models:
        checked_model_id(engine, model_id)

    async def answer(model_id: str) -> ModelAnswer:
        text, confidence, _ = await run_task(engine, body.task, model_id, caller.id)
        return ModelAnswer(text, confidence)

    language = getattr(body.task.context, "language", None)
    outcome = await orchestrate(
        body.models,
        body.strategy,
        answer,
        weights=body.weights,
        timeout_seconds=body.timeout_seconds,
        confidence_threshold=body.confidence_threshold,
        language=language,
        parsers=engine.parsers,
    )
    results = []
    for item in outcome.outcomes:
        if item.answer is not None:
            results.append(
                s.ModelResultBody(
                    model_id=item.model_id,
                    status="success",
                    result=item.answer.text,
                    confidence=round(item.answer.confidence, 4),
                    processing_time_ms=round(item.processing_time_ms, 2),
                )
            )
        else:
            error = item.error
            results.append(
                s.ModelResultBody(
                    model_id=item.model_id,
                    status="error" if item.ran else "skipped",
                    result=None,
                    confidence=None,
                    processing_time_ms=round(item.processing_time_ms, 2),
                    error=s.JobError(code=error.code, message=error.message, details=error.details)
                    if error is not None
                    else None,
                )
            )
    return s.OrchestrationResponse(
        orchestration_result=s.OrchestrationResultBody(
            strategy_used=outcome.strategy,
            model_results=results,
            final_result=outcome.final_result,
            final_model=outcome.final_model,
            consensus_score=round(outcome.consensus_score, 4),
            total_processing_time_ms=round(outcome.total_processing_time_ms, 2),
        )
    )
