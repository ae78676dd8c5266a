"""Request and response models of the AI Services API (shared/spec/ai-services-api.md).

Bounds on every field keep bad input out of llama.cpp: a value outside them is
a 422 naming the field, before any work is done.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.models.catalog import MODEL_ID_PATTERN

MAX_CODE_CHARS = 1_000_000

# Hints a language server sharing this engine sends with editor requests.
PRIORITY_HEADER = "X-AI-IDE-Priority"
DOCUMENT_HEADER = "X-AI-IDE-Document"


class StrictModel(BaseModel):
    """Unknown fields are errors: a typo such as ``max_token`` must not be ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- errors --------------------------------------------------------------------


class ErrorBody(BaseModel):
    """The error object inside the envelope."""

    code: str = Field(examples=["MODEL_NOT_FOUND"])
    message: str
    details: dict[str, object] = Field(default_factory=dict)
    timestamp: str = Field(description="RFC 3339, UTC")
    request_id: str


class ErrorEnvelope(BaseModel):
    """Every error response has this shape."""

    error: ErrorBody


# -- models ------------------------------------------------------------------------


class PerformanceMetrics(BaseModel):
    """Measured over this model's recorded inferences (null before the first)."""

    avg_inference_time_ms: float | None
    success_rate: float | None


class ModelEntry(BaseModel):
    """One model in the catalog with its live status."""

    id: str
    name: str
    type: Literal["completion", "chat"]
    status: Literal["available", "loading", "loaded", "unloading", "error"]
    capabilities: list[str]
    memory_usage_mb: float | None = Field(description="Measured when loaded, else null.")
    last_used: str | None = Field(description="RFC 3339; null if never used.")
    performance_metrics: PerformanceMetrics
    context_length: int
    fim_family: str | None = Field(description="Detected on load; null before.")
    load_progress: float = Field(ge=0.0, le=1.0)
    error: str | None = Field(None, description="Why the status is error.")


class Pagination(BaseModel):
    """Position of this page in the whole list."""

    total_count: int
    has_more: bool


class ModelList(BaseModel):
    """``GET /models``."""

    models: list[ModelEntry]
    pagination: Pagination


class LoadRequest(StrictModel):
    """``POST /models/{id}/load`` body."""

    priority: Literal["high", "normal", "low"] = "normal"
    timeout_seconds: int = Field(300, ge=1, le=3600)
    force_reload: bool = False


class LoadResponse(BaseModel):
    """Where the load stands."""

    model_id: str
    status: Literal["loading", "loaded", "unloading"]
    estimated_completion_time_seconds: float
    queue_position: int


class UnloadResponse(BaseModel):
    """Measured effect of an unload."""

    model_id: str
    status: Literal["unloaded"]
    memory_freed_mb: float
    unload_time_ms: float


# -- completion --------------------------------------------------------------------


class ProjectContext(StrictModel):
    """Optional hints about the project."""

    dependencies: list[str] = Field(default_factory=list, max_length=200)
    framework: str | None = Field(None, max_length=200)


class CompletionContext(StrictModel):
    """Where to complete."""

    language: str | None = Field(None, max_length=64, examples=["rust"])
    code: str = Field(max_length=MAX_CODE_CHARS)
    cursor_position: int | None = Field(
        None, ge=0, le=2**31 - 1, description="Offset in code; past the end is clamped."
    )
    file_path: str | None = Field(None, max_length=4096)
    project_context: ProjectContext | None = None


class CompletionParameters(StrictModel):
    """Sampling parameters."""

    max_tokens: int = Field(100, ge=1, le=4096)
    temperature: float = Field(0.1, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    stop_sequences: list[str] = Field(default_factory=list, max_length=16)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    n: int = Field(1, ge=1, le=8, description="Completions to produce (1 + alternatives).")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class CompletionOptions(StrictModel):
    """How to deliver the result."""

    stream: bool = False
    async_: bool = Field(False, alias="async")
    cache: bool = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CompletionRequestBody(StrictModel):
    """``POST /inference/completion`` body."""

    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)
    context: CompletionContext
    parameters: CompletionParameters = Field(default_factory=CompletionParameters)
    options: CompletionOptions = Field(default_factory=CompletionOptions)


class CompletionMetadata(BaseModel):
    """Measured figures of one completion."""

    model_used: str
    tokens_used: int = Field(description="Prompt plus generated tokens.")
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = Field(description="Prompt tokens reused from the KV cache.")
    processing_time_ms: float
    finish_reason: str
    used_fim: bool
    cached: bool = Field(description="Served from the completion cache.")
    replace_range: tuple[int, int] = Field(description="Offsets in code the text replaces.")


class CompletionBody(BaseModel):
    """The completion itself."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    metadata: CompletionMetadata


class Suggestion(BaseModel):
    """An alternative completion."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str


class CompletionResponse(BaseModel):
    """``POST /inference/completion`` answer."""

    completion: CompletionBody
    suggestions: list[Suggestion]


# -- health ----------------------------------------------------------------------------


class RegistryHealth(BaseModel):
    """Model registry check."""

    status: str
    loaded_models: int
    total_models: int


class InferenceHealth(BaseModel):
    """Inference queue check."""

    status: str
    active_requests: int
    queue_length: int


class CacheHealth(BaseModel):
    """Completion cache check."""

    status: str
    hit_rate: float | None
    memory_usage_mb: float


class HealthServices(BaseModel):
    """Per-service checks."""

    model_registry: RegistryHealth
    inference_engine: InferenceHealth
    cache_service: CacheHealth


class SystemResourcesBody(BaseModel):
    """Measured machine load; GPU figures null without an NVIDIA GPU."""

    cpu_usage_percent: float
    memory_usage_percent: float
    gpu_memory_used_mb: float | None
    gpu_memory_total_mb: float | None


class HealthResponse(BaseModel):
    """``GET /health``."""

    status: Literal["healthy", "degraded", "unhealthy"]
    services: HealthServices
    system_resources: SystemResourcesBody


# -- generation ---------------------------------------------------------------------


class GenerationContext(StrictModel):
    """What to generate into."""

    language: str | None = Field(None, max_length=64)
    existing_code: str = Field("", max_length=MAX_CODE_CHARS)
    file_path: str | None = Field(None, max_length=4096)


class GenerationParameters(StrictModel):
    """Sampling parameters for generation."""

    max_tokens: int = Field(256, ge=1, le=4096)
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    stop_sequences: list[str] = Field(default_factory=list, max_length=16)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class AsyncOption(StrictModel):
    """Options shared by requests that can run as background jobs."""

    async_: bool = Field(False, alias="async")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GenerationRequestBody(StrictModel):
    """``POST /inference/generation`` body."""

    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)
    prompt: str = Field(min_length=1, max_length=100_000)
    context: GenerationContext = Field(default_factory=GenerationContext)
    parameters: GenerationParameters = Field(default_factory=GenerationParameters)
    options: AsyncOption = Field(default_factory=AsyncOption)


class GenerationMetadata(BaseModel):
    """Measured figures of one generation."""

    model_used: str
    tokens_used: int
    prompt_tokens: int
    completion_tokens: int
    processing_time_ms: float
    finish_reason: str
    prompt_style: Literal["chat", "comment"] = Field(
        description="chat: the model's chat template; comment: the request as a code comment"
    )


class GenerationBody(BaseModel):
    """The generated code."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    metadata: GenerationMetadata


class GenerationResponse(BaseModel):
    """``POST /inference/generation`` answer."""

    generation: GenerationBody


# -- jobs -----------------------------------------------------------------------------


class JobAccepted(BaseModel):
    """202 answer to a request with ``options.async``."""

    job_id: str
    status: Literal["queued", "running", "completed", "failed"]
    status_url: str


class JobError(BaseModel):
    """Why a job failed (the envelope's error fields)."""

    code: str
    message: str
    details: dict[str, object] = Field(default_factory=dict)


class JobStatusResponse(BaseModel):
    """``GET /jobs/{id}``: the job and, once done, the synchronous call's body."""

    job_id: str
    type: str
    status: Literal["queued", "running", "completed", "failed"]
    created_at: str
    started_at: str | None
    finished_at: str | None
    result: dict[str, object] | None
    error: JobError | None


# -- monitoring ------------------------------------------------------------------------


class MetricsBody(BaseModel):
    """Figures computed from recorded inferences in the time range."""

    inference_count: int
    average_inference_time_ms: float | None
    p95_inference_time_ms: float | None
    success_rate: float | None
    memory_usage_mb: float | None
    gpu_utilization_percent: float | None
    error_rate: float | None
    cache_hit_rate: float | None


class TimeRange(BaseModel):
    """The range the figures cover (RFC 3339)."""

    start: str
    end: str


class ModelMetricsResponse(BaseModel):
    """``GET /monitoring/models/{id}/metrics``."""

    model_id: str
    metrics: MetricsBody
    time_range: TimeRange


# -- refactoring -------------------------------------------------------------------------


class RefactorContext(StrictModel):
    """Where the refactoring applies."""

    language: str | None = Field(None, max_length=64, examples=["rust"])
    file_path: str | None = Field(None, max_length=4096)
    selection_start: int | None = Field(None, ge=0, le=2**31 - 1)
    selection_end: int | None = Field(None, ge=0, le=2**31 - 1)


class RefactorRequestBody(StrictModel):
    """``POST /inference/refactor`` body."""

    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS)
    operation: Literal["extract_variable", "extract_method", "rename", "optimize_performance"]
    context: RefactorContext = Field(default_factory=RefactorContext)
    safety_checks: bool = True
    new_name: str | None = Field(None, min_length=1, max_length=256)
    options: AsyncOption = Field(default_factory=AsyncOption)


class SafetyCheckBody(BaseModel):
    """One check that ran on the result (passed null: not run, e.g. tool missing)."""

    name: str
    passed: bool | None
    detail: str


class EditBody(BaseModel):
    """Replace ``original_code[start:end]`` with ``new_text``."""

    start: int
    end: int
    new_text: str


class RefactoringBody(BaseModel):
    """The accepted refactoring."""

    type: str
    original_code: str
    refactored_code: str
    confidence: float = Field(ge=0.0, le=1.0)
    safety_score: float = Field(ge=0.0, le=1.0)
    explanation: str
    checks: list[SafetyCheckBody]
    edits: list[EditBody]
    model_used: str | None = Field(description="null when no model was needed")


class AlternativeBody(BaseModel):
    """Another variant that passed the same checks."""

    type: str
    code: str
    confidence: float = Field(ge=0.0, le=1.0)
    safety_score: float = Field(ge=0.0, le=1.0)


class RefactorResponse(BaseModel):
    """``POST /inference/refactor`` answer."""

    refactoring: RefactoringBody
    alternatives: list[AlternativeBody]


# -- orchestration and batch ---------------------------------------------------------


class CompletionTask(StrictModel):
    """A completion, as in ``POST /inference/completion``."""

    type: Literal["completion"]
    context: CompletionContext
    parameters: CompletionParameters = Field(default_factory=CompletionParameters)


class GenerationTask(StrictModel):
    """A generation, as in ``POST /inference/generation``."""

    type: Literal["generation"]
    prompt: str = Field(min_length=1, max_length=100_000)
    context: GenerationContext = Field(default_factory=GenerationContext)
    parameters: GenerationParameters = Field(default_factory=GenerationParameters)


class RefactorTask(StrictModel):
    """A refactoring, as in ``POST /inference/refactor``."""

    type: Literal["refactor"]
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS)
    operation: Literal["extract_variable", "extract_method", "rename", "optimize_performance"]
    context: RefactorContext = Field(default_factory=RefactorContext)
    safety_checks: bool = True
    new_name: str | None = Field(None, min_length=1, max_length=256)


Task = Annotated[CompletionTask | GenerationTask | RefactorTask, Field(discriminator="type")]


class OrchestrationRequestBody(StrictModel):
    """``POST /orchestration/inference`` body."""

    models: list[Annotated[str, Field(pattern=MODEL_ID_PATTERN, max_length=128)]] = Field(
        min_length=1, max_length=8
    )
    strategy: Literal["majority_vote", "weighted_average", "best_of_n", "fallback"]
    weights: list[Annotated[float, Field(ge=0.0, le=1e6)]] | None = Field(
        None, description="One per model, same order; default 1 each."
    )
    task: Task
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    confidence_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="fallback: answers below it pass to the next model"
    )


class ModelResultBody(BaseModel):
    """One model's answer (or error) in an orchestration."""

    model_id: str
    status: Literal["success", "error", "skipped"]
    result: str | None
    confidence: float | None
    processing_time_ms: float
    error: JobError | None = None


class OrchestrationResultBody(BaseModel):
    """How the final result was chosen."""

    strategy_used: str
    model_results: list[ModelResultBody]
    final_result: str | None
    final_model: str | None
    consensus_score: float = Field(ge=0.0, le=1.0)
    total_processing_time_ms: float


class OrchestrationResponse(BaseModel):
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


class BatchResultBody(BaseModel):
    """One request's outcome."""

    request_id: str
    status: Literal["success", "error"]
    result: dict[str, object] | None = None
    error: ErrorBody | None = None
    processing_time_ms: float


class BatchSummary(BaseModel):
    """Counts and the mean measured time."""

    total_requests: int
    successful_requests: int
    failed_requests: int
    average_processing_time_ms: float


class BatchResponse(BaseModel):
    """``POST /batch/inference`` and ``GET /batch/{id}``."""

    batch_id: str
    status: Literal["running", "completed", "partial", "failed"]
    results: list[BatchResultBody] = Field(default_factory=list)
    summary: BatchSummary | None = None
    processing_time_ms: float | None = None
    status_url: str | None = None
