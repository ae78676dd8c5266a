"""Orchestration (one task on several models) and batch inference."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from ai_ide.wire.common import (
    MAX_CODE_CHARS,
    MAX_PROMPT_CHARS,
    MODEL_ID_PATTERN,
    StrictModel,
    WireModel,
)
from ai_ide.wire.errors import ErrorBody, JobError
from ai_ide.wire.inference import (
    CompletionContext,
    CompletionParameters,
    GenerationContext,
    GenerationParameters,
    RefactorContext,
    RefactorOperation,
)


class CompletionTask(StrictModel):
    """A completion, as in ``POST /inference/completion``."""

    type: Literal["completion"]
    context: CompletionContext
    parameters: CompletionParameters = Field(default_factory=CompletionParameters)


class GenerationTask(StrictModel):
    """A generation, as in ``POST /inference/generation``."""

    type: Literal["generation"]
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    context: GenerationContext = Field(default_factory=GenerationContext)
    parameters: GenerationParameters = Field(default_factory=GenerationParameters)


class RefactorTask(StrictModel):
    """A refactoring, as in ``POST /inference/refactor``."""

    type: Literal["refactor"]
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS)
    operation: RefactorOperation
    context: RefactorContext = Field(default_factory=RefactorContext)
    safety_checks: bool = True
    new_name: str | None = Field(None, min_length=1, max_length=256)


Task = Annotated[CompletionTask | GenerationTask | RefactorTask, Field(discriminator="type")]
OrchestrationStrategy = Literal["majority_vote", "weighted_average", "best_of_n", "fallback"]


class OrchestrationRequestBody(StrictModel):
    """``POST /orchestration/inference`` body."""

    models: list[Annotated[str, Field(pattern=MODEL_ID_PATTERN, max_length=128)]] = Field(
        min_length=1, max_length=8
    )
    strategy: OrchestrationStrategy
    weights: list[Annotated[float, Field(ge=0.0, le=1e6)]] | None = Field(
        None, description="One per model, same order; default 1 each."
    )
    task: Task
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    confidence_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="fallback: answers below it pass to the next model"
    )


class ModelResultBody(WireModel):
    """One model's answer (or error) in an orchestration."""

    model_id: str
    status: Literal["success", "error", "skipped"]
    result: str | None
    confidence: float | None
    processing_time_ms: float
    error: JobError | None = None


class OrchestrationResultBody(WireModel):
    """How the final result was chosen."""

    strategy_used: str
    model_results: list[ModelResultBody]
    final_result: str | None
    final_model: str | None
    consensus_score: float = Field(ge=0.0, le=1.0)
    total_processing_time_ms: float


class OrchestrationResponse(WireModel):
    """``POST /orchestration/inference`` answer."""

    orchestration_result: OrchestrationResultBody


class BatchCompletion(CompletionTask):
    """A completion in a batch."""

    id: str = Field(min_length=1, max_length=128)
    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)


class BatchGeneration(GenerationTask):
    """A generation in a batch."""

    id: str = Field(min_length=1, max_length=128)
    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)


class BatchRefactor(RefactorTask):
    """A refactoring in a batch."""

    id: str = Field(min_length=1, max_length=128)
    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)


BatchItem = Annotated[
    BatchCompletion | BatchGeneration | BatchRefactor, Field(discriminator="type")
]


class BatchOptions(StrictModel):
    """How a batch runs."""

    parallel_execution: bool = True
    max_concurrent: int = Field(5, ge=1, le=64)
    timeout_seconds: float = Field(120.0, gt=0, le=3600)
    async_: bool = Field(False, alias="async")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BatchRequestBody(StrictModel):
    """``POST /batch/inference`` body."""

    requests: list[BatchItem] = Field(min_length=1, max_length=100)
    options: BatchOptions = Field(default_factory=BatchOptions)


class BatchResultBody(WireModel):
    """One request's outcome."""

    request_id: str
    status: Literal["success", "error"]
    result: dict[str, object] | None = None
    error: ErrorBody | None = None
    processing_time_ms: float


class BatchSummary(WireModel):
    """Counts and the mean measured time."""

    total_requests: int
    successful_requests: int
    failed_requests: int
    average_processing_time_ms: float


class BatchProgress(WireModel):
    """How far a running batch is."""

    finished_requests: int
    total_requests: int


BatchStatus = Literal["running", "completed", "partial", "failed"]
BATCH_TERMINAL_STATUSES = frozenset({"completed", "partial", "failed"})


class BatchResponse(WireModel):
    """``POST /batch/inference`` and ``GET /batch/{id}``."""

    batch_id: str
    status: BatchStatus
    results: list[BatchResultBody] = Field(default_factory=list)
    summary: BatchSummary | None = None
    processing_time_ms: float | None = None
    status_url: str | None = None
    progress: BatchProgress | None = Field(
        None,
        description="While running: requests finished so far (null when another replica "
        "runs the batch).",
    )
