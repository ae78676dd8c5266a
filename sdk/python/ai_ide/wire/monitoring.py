"""Monitoring and health: ``GET /monitoring/models/{id}/metrics``, ``GET /health``."""

from __future__ import annotations

from typing import Literal

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
