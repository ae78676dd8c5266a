"""Health."""

from __future__ import annotations

from fastapi import APIRouter

from ai_ide import wire as s
from lsp_server.sidecar import convert
from lsp_server.sidecar.deps import EngineDep

router = APIRouter(tags=["system"])


@router.get("/health", response_model=s.HealthResponse, summary="Service health")
async def health(engine: EngineDep) -> s.HealthResponse:
    """healthy, degraded (a model failed) or unhealthy (no usable model)."""
    return convert.to_health(engine.health(), engine.cache_stats())
