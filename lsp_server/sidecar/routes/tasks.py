"""One task (completion, generation or refactoring) on a chosen model.

Shared by orchestration and batch: each builds the same request the single
endpoint would get, so results are identical to calling it directly.
"""

from __future__ import annotations

from typing import Any

from ai_ide import wire as s
from engine.engine import Engine
from lsp_server.sidecar.routes.inference import run_completion, run_generation, run_refactor

AnyTask = s.CompletionTask | s.GenerationTask | s.RefactorTask


async def run_task(
    engine: Engine, task: AnyTask, model_id: str, caller: str | None
) -> tuple[str, float, dict[str, Any]]:
    """Run ``task`` on ``model_id``: (text, confidence, the endpoint's response body)."""
    if isinstance(task, s.CompletionTask):
        completion = await run_completion(
            engine,
            s.CompletionRequestBody(
                model_id=model_id, context=task.context, parameters=task.parameters
            ),
            caller,
            background=True,
        )
        body = completion.model_dump(mode="json")
        return completion.completion.text, completion.completion.confidence, body
    if isinstance(task, s.GenerationTask):
        generation = await run_generation(
            engine,
            s.GenerationRequestBody(
                model_id=model_id,
                prompt=task.prompt,
                context=task.context,
                parameters=task.parameters,
            ),
            caller,
            background=True,
        )
        body = generation.model_dump(mode="json")
        return generation.generation.text, generation.generation.confidence, body
    refactoring = await run_refactor(
        engine,
        s.RefactorRequestBody(
            model_id=model_id,
            code=task.code,
            operation=task.operation,
            context=task.context,
            safety_checks=task.safety_checks,
            new_name=task.new_name,
        ),
        caller,
        background=True,
    )
    body = refactoring.model_dump(mode="json")
    return refactoring.refactoring.refactored_code, refactoring.refactoring.confidence, body
