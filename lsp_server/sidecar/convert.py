"""Pure conversions from engine results to API response models."""

from __future__ import annotations

from datetime import datetime

from ai_ide import wire as s
from engine.codegen.prompt import CodeGenResult
from engine.completion.cache import CacheStats
from engine.completion.pipeline import CompletionResult
from engine.engine import HealthReport
from engine.models.registry import LoadTicket, ModelView, UnloadResult
from engine.refactor import RefactorResult
from engine.runtime.messages import GenerationResult
from services.jobs import JobRecord
from services.metrics import ModelMetrics


def rfc3339(value: datetime | None) -> str | None:
    """A UTC datetime as RFC 3339 (``Z`` suffix), or None."""
    if value is None:
        return None
    # Four-digit years always (strftime's %Y gives "1" for year 1 on Linux).
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"
    )


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def to_model_entry(view: ModelView, metrics: ModelMetrics) -> s.ModelEntry:
    """A catalog model with its status and measured performance."""
    return s.ModelEntry(
        id=view.spec.id,
        name=view.spec.name,
        type=view.spec.type,
        status=view.status,
        capabilities=list(view.spec.capabilities),
        memory_usage_mb=view.memory_usage_mb,
        last_used=rfc3339(view.last_used),
        performance_metrics=s.PerformanceMetrics(
            avg_inference_time_ms=_round(metrics.average_inference_time_ms),
            success_rate=_round(metrics.success_rate, 4),
        ),
        context_length=view.request_context,
        fim_family=view.info.fim_family if view.info else None,
        load_progress=round(view.load_progress, 3),
        error=view.error,
    )


def to_load_response(ticket: LoadTicket) -> s.LoadResponse:
    """Where a load request stands."""
    status = ticket.status if ticket.status in ("loading", "loaded", "unloading") else "loading"
    return s.LoadResponse(
        model_id=ticket.model_id,
        status=status,
        estimated_completion_time_seconds=ticket.estimated_completion_time_seconds,
        queue_position=ticket.queue_position,
    )


def to_unload_response(result: UnloadResult) -> s.UnloadResponse:
    """Measured effect of an unload."""
    return s.UnloadResponse(
        model_id=result.model_id,
        status="unloaded",
        memory_freed_mb=result.memory_freed_mb,
        unload_time_ms=result.unload_time_ms,
    )


def to_timings(generation: GenerationResult) -> s.Timings:
    """Where one generation's time went, as the worker measured it."""
    return s.Timings(
        queue_ms=round(generation.queue_ms, 2),
        prompt_ms=round(generation.prompt_ms, 2),
        decode_ms=round(generation.decode_ms, 2),
        first_token_ms=round(generation.first_token_ms, 2),
        total_ms=round(generation.total_ms, 2),
    )


def to_completion_response(result: CompletionResult) -> s.CompletionResponse:
    """The documented completion body; suggestions say how they were produced."""
    primary = result.completion
    generation = primary.generation
    suggestions = [
        s.Suggestion(
            text=alt.text,
            confidence=round(alt.confidence, 4),
            reasoning=(
                f"Sampled from the same prompt at temperature {alt.temperature:.2f} "
                f"with seed {alt.seed}; confidence is exp(mean token log-probability)"
            ),
        )
        for alt in result.alternatives
    ]
    return s.CompletionResponse(
        completion=s.CompletionBody(
            text=primary.text,
            confidence=round(primary.confidence, 4),
            metadata=s.CompletionMetadata(
                model_used=result.model_id,
                tokens_used=generation.prompt_tokens + generation.completion_tokens,
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
                cached_prompt_tokens=generation.cached_prompt_tokens,
                processing_time_ms=round(result.processing_time_ms, 2),
                finish_reason=generation.finish_reason,
                used_fim=generation.used_fim,
                cached=result.cached,
                replace_range=(primary.replace_start, primary.replace_end),
                raw_text=primary.raw_text,
                context_snippets=result.context_snippets,
                timings=to_timings(generation),
            ),
        ),
        suggestions=suggestions,
    )


def to_health(report: HealthReport, cache: CacheStats) -> s.HealthResponse:
    """The documented health shape from the engine's checks."""
    gpu = report.resources.gpu
    registry_status = "healthy" if not report.failed_models else "degraded"
    if report.total_models and len(report.failed_models) == report.total_models:
        registry_status = "unhealthy"
    return s.HealthResponse(
        status=report.status,
        services=s.HealthServices(
            model_registry=s.RegistryHealth(
                status=registry_status,
                loaded_models=report.loaded_models,
                total_models=report.total_models,
            ),
            inference_engine=s.InferenceHealth(
                status="healthy",
                active_requests=report.active_requests,
                queue_length=report.queue_length,
            ),
            cache_service=s.CacheHealth(
                status="healthy",
                hit_rate=_round(cache.hit_rate, 4),
                memory_usage_mb=round(cache.memory_bytes / 2**20, 3),
            ),
        ),
        system_resources=s.SystemResourcesBody(
            cpu_usage_percent=round(report.resources.cpu_usage_percent, 1),
            memory_usage_percent=round(report.resources.memory_usage_percent, 1),
            gpu_memory_used_mb=_round(gpu.used_mb, 1) if gpu else None,
            gpu_memory_total_mb=_round(gpu.total_mb, 1) if gpu else None,
        ),
    )


def to_generation_response(result: CodeGenResult) -> s.GenerationResponse:
    """The documented generation body."""
    generation = result.generation
    return s.GenerationResponse(
        generation=s.GenerationBody(
            text=result.text,
            confidence=round(result.confidence, 4),
            metadata=s.GenerationMetadata(
                model_used=result.model_id,
                tokens_used=generation.prompt_tokens + generation.completion_tokens,
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
                cached_prompt_tokens=generation.cached_prompt_tokens,
                processing_time_ms=round(result.processing_time_ms, 2),
                finish_reason=generation.finish_reason,
                timings=to_timings(generation),
                prompt_style="chat" if result.prompt_style == "chat" else "comment",
            ),
        )
    )


def to_job_status(job: JobRecord) -> s.JobStatusResponse:
    """A stored job in the API's shape."""
    return s.JobStatusResponse(
        job_id=job.id,
        type=job.kind,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result=job.result,
        error=s.JobError.model_validate(job.error) if job.error else None,
    )


def to_model_metrics(
    model_id: str,
    metrics: ModelMetrics,
    view: ModelView,
    gpu_utilization: float | None,
    start: datetime,
    end: datetime,
) -> s.ModelMetricsResponse:
    """Recorded figures of a model over a time range."""
    return s.ModelMetricsResponse(
        model_id=model_id,
        metrics=s.MetricsBody(
            inference_count=metrics.inference_count,
            average_inference_time_ms=_round(metrics.average_inference_time_ms),
            p95_inference_time_ms=_round(metrics.p95_inference_time_ms),
            success_rate=_round(metrics.success_rate, 4),
            memory_usage_mb=view.memory_usage_mb,
            gpu_utilization_percent=gpu_utilization,
            error_rate=_round(metrics.error_rate, 4),
            cache_hit_rate=_round(metrics.cache_hit_rate, 4),
        ),
        time_range=s.TimeRange(start=rfc3339(start) or "", end=rfc3339(end) or ""),
    )


def to_refactor_response(model_id: str | None, result: RefactorResult) -> s.RefactorResponse:
    """The documented refactoring body, with the checks that ran."""
    return s.RefactorResponse(
        refactoring=s.RefactoringBody(
            type=result.type,
            original_code=result.original_code,
            refactored_code=result.refactored_code,
            confidence=round(result.confidence, 4),
            safety_score=round(result.safety_score, 4),
            explanation=result.explanation,
            checks=[
                s.SafetyCheckBody(name=c.name, passed=c.passed, detail=c.detail)
                for c in result.checks
            ],
            edits=[s.EditBody(start=e.start, end=e.end, new_text=e.new_text) for e in result.edits],
            model_used=model_id,
        ),
        alternatives=[
            s.AlternativeBody(
                type=a.type,
                code=a.code,
                confidence=round(a.confidence, 4),
                safety_score=round(a.safety_score, 4),
            )
            for a in result.alternatives
        ],
    )
