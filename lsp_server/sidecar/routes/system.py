"""Health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ai_ide import wire as s
from engine.engine import Engine
from lsp_server.sidecar import convert
from lsp_server.sidecar.deps import get_engine

router = APIRouter(tags=["system"])


@router.get("/health", response_model=s.HealthResponse, summary="Service health")
async def health(engine: Annotated[Engine, Depends(get_engine)]) -> s.HealthResponse:
    """healthy, degraded (a model failed) or unhealthy (no usable model)."""
    return convert.to_health(engine.health(), engine.cache_stats())
