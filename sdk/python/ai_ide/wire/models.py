"""Model management: ``GET /models``, ``POST /models/{id}/load|unload``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ai_ide.wire.common import Pagination, StrictModel, WireModel

ModelStatus = Literal["available", "loading", "loaded", "unloading", "error"]


class PerformanceMetrics(WireModel):
    """Measured over this model's recorded inferences (null before the first)."""

    avg_inference_time_ms: float | None
    success_rate: float | None


class ModelEntry(WireModel):
    """One model in the catalog with its live status."""

    id: str
    name: str
    type: Literal["completion", "chat"]
    status: ModelStatus
    capabilities: list[str]
    memory_usage_mb: float | None = Field(description="Measured when loaded, else null.")
    last_used: str | None = Field(description="RFC 3339; null if never used.")
    performance_metrics: PerformanceMetrics
    context_length: int
    fim_family: str | None = Field(description="Detected on load; null before.")
    load_progress: float = Field(ge=0.0, le=1.0)
    error: str | None = Field(None, description="Why the status is error.")


class ModelList(WireModel):
    """``GET /models``."""

    models: list[ModelEntry]
    pagination: Pagination


class LoadRequest(StrictModel):
    """``POST /models/{id}/load`` body."""

    priority: Literal["high", "normal", "low"] = "normal"
    timeout_seconds: int = Field(300, ge=1, le=3600)
    force_reload: bool = False


class LoadResponse(WireModel):
    """Where the load stands."""

    model_id: str
    status: Literal["loading", "loaded", "unloading"]
    estimated_completion_time_seconds: float
    queue_position: int


class UnloadResponse(WireModel):
    """Measured effect of an unload."""

    model_id: str
    status: Literal["unloaded"]
    memory_freed_mb: float
    unload_time_ms: float
