"""Monitoring: per-model metrics (JSON) and Prometheus text exposition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from ai_ide import wire as s
from engine.errors import InvalidRequestError
from lsp_server.sidecar import convert
from lsp_server.sidecar.deps import EngineDep, ServicesDep, checked_model_id
from lsp_server.sidecar.prometheus import render_prometheus

router = APIRouter(prefix="/monitoring", tags=["monitoring"])


def parse_time(value: str | None, field: str) -> datetime | None:
    """An RFC 3339 timestamp from a query parameter (naive times are UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequestError(field, f"{field} must be an RFC 3339 timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get(
    "/models/{model_id}/metrics",
    response_model=s.ModelMetricsResponse,
    summary="Performance metrics of a model",
)
async def model_metrics(
    model_id: str,
    engine: EngineDep,
    services: ServicesDep,
    start: Annotated[str | None, Query(max_length=64, description="RFC 3339")] = None,
    end: Annotated[str | None, Query(max_length=64, description="RFC 3339")] = None,
) -> s.ModelMetricsResponse:
    """Figures from the recorded inferences of the model within [start, end]."""
    checked_model_id(engine, model_id)
    start_at = parse_time(start, "start")
    end_at = parse_time(end, "end") or datetime.now(UTC)
    if start_at is not None and start_at > end_at:
        raise InvalidRequestError("end", "end must not be before start")
    # Off the event loop: reading flushes pending records (a store transaction).
    metrics = await asyncio.to_thread(
        services.metrics.metrics,
        model_id,
        start_at.timestamp() if start_at else None,
        end_at.timestamp(),
    )
    if start_at is None:
        first = metrics.first_at
        start_at = datetime.fromtimestamp(first, UTC) if first is not None else end_at
    gpu = engine.gpu_memory()
    view = engine.model(model_id)
    utilization = gpu.utilization_percent if gpu is not None and view.status == "loaded" else None
    return convert.to_model_metrics(model_id, metrics, view, utilization, start_at, end_at)


@router.get(
    "/prometheus",
    response_class=PlainTextResponse,
    summary="Metrics in Prometheus text format",
)
async def prometheus(
    request: Request, engine: EngineDep, services: ServicesDep
) -> PlainTextResponse:
    """Counters for a Prometheus scraper: all time (the JSON metrics cover the kept records)."""
    # Pending records are written on a thread, so rendering only reads.
    await asyncio.to_thread(services.metrics.flush)
    return PlainTextResponse(
        render_prometheus(engine, services, request.app.state.rate_limiter),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
