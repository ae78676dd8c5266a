"""Monitoring and health: ``GET /monitoring/models/{id}/metrics``, ``GET /health``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ai_ide.wire.common import WireModel


class MetricsBody(WireModel):
    """Figures computed from recorded inferences in the time range."""

    inference_count: int
    average_inference_time_ms: float | None
    p95_inference_time_ms: float | None
    success_rate: float | None
    memory_usage_mb: float | None
    gpu_utilization_percent: float | None
    error_rate: float | None
    cache_hit_rate: float | None


class TimeRange(WireModel):
    """The range the figures cover (RFC 3339)."""

    start: str
    end: str


class ModelMetricsResponse(WireModel):
    """``GET /monitoring/models/{id}/metrics``."""

    model_id: str
    metrics: MetricsBody
    time_range: TimeRange


class RegistryHealth(WireModel):
    """Model registry check."""

    status: str
    loaded_models: int
    total_models: int


class InferenceHealth(WireModel):
    """Inference queue check."""

    status: str
    active_requests: int
    queue_length: int


class CacheHealth(WireModel):
    """Completion cache check."""

    status: str
    hit_rate: float | None
    memory_usage_mb: float


class HealthServices(WireModel):
    """Per-service checks."""

    model_registry: RegistryHealth
    inference_engine: InferenceHealth
    cache_service: CacheHealth


class SystemResourcesBody(WireModel):
    """Measured machine load; GPU figures null without an NVIDIA GPU."""

    cpu_usage_percent: float
    memory_usage_percent: float
    gpu_memory_used_mb: float | None
    gpu_memory_total_mb: float | None


class HealthResponse(WireModel):
    """``GET /health``."""

    status: Literal["healthy", "degraded", "unhealthy"]
    services: HealthServices
    system_resources: SystemResourcesBody


class RecentRequest(WireModel):
    """One finished inference as the live view shows it: figures, and code only on opt-in."""

    face: Literal["lsp", "rest"] = Field(
        description="lsp: the local editor's language server; rest: an API caller."
    )
    model_id: str
    kind: str = Field(description="completion, generation or refactor.")
    started_at: str = Field(description="RFC 3339.")
    duration_ms: float
    tokens: int = Field(description="Prompt plus generated tokens.")
    prompt_tokens: int
    cached_prompt_tokens: int = Field(description="Prompt tokens read from the KV cache.")
    cached: bool = Field(description="Answered from the completion cache without inference.")
    outcome: Literal["success", "error"]
    error_code: str | None
    output: str | None = Field(
        None,
        description="The text the model produced; only when the server runs with "
        "http.dashboard_show_code on (null otherwise).",
    )


class LiveGpu(WireModel):
    """The first NVIDIA GPU now."""

    memory_used_mb: float
    memory_total_mb: float
    utilization_percent: float | None


class LiveMonitoring(WireModel):
    """``GET /monitoring/live``: recent requests (newest first) and the gauges now."""

    requests: list[RecentRequest]
    capacity: int = Field(description="How many recent requests the server keeps.")
    active_requests: int
    queue_length: int
    queued_by_priority: dict[str, int] = Field(
        description="Requests waiting for a slot per priority class: interactive (editor "
        "keystrokes), speculative, normal (REST), batch and warm (an editor's changed "
        "context read ahead of its next keystroke)."
    )
    gpu: LiveGpu | None = Field(description="Null without an NVIDIA GPU.")
