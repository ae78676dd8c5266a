"""The dashboard's live view: recent requests and the gauges of this moment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ai_ide import wire as s
from engine.events import InferenceRecord
from lsp_server.sidecar.deps import EngineDep
from lsp_server.sidecar.recent import RecentRequests

router = APIRouter(prefix="/monitoring", tags=["monitoring"])


def to_recent_request(record: InferenceRecord, *, with_output: bool) -> s.RecentRequest:
    """The wire view of one record; the engine marks the local editor's requests by no caller."""
    return s.RecentRequest(
        face="lsp" if record.caller is None else "rest",
        model_id=record.model_id,
        kind=record.kind,
        started_at=datetime.fromtimestamp(record.started_at, UTC).isoformat(
            timespec="milliseconds"
        ),
        duration_ms=round(record.duration_ms, 3),
        tokens=record.tokens,
        prompt_tokens=record.prompt_tokens,
        cached_prompt_tokens=record.cached_prompt_tokens,
        cached=record.cached,
        outcome="success" if record.success else "error",
        error_code=record.error_code,
        output=record.output if with_output else None,
    )


@router.get("/live", response_model=s.LiveMonitoring, summary="Recent requests and live gauges")
async def live(
    request: Request,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> s.LiveMonitoring:
    """The latest inferences of every face (newest first, figures only) and the queue now."""
    recent: RecentRequests = request.app.state.recent_requests
    health = engine.health()
    gpu = engine.gpu_memory()
    return s.LiveMonitoring(
        requests=[
            to_recent_request(r, with_output=recent.keep_output) for r in recent.latest(limit)
        ],
        capacity=recent.capacity,
        active_requests=health.active_requests,
        queue_length=health.queue_length,
        queued_by_priority=health.queued_by_priority,
        gpu=None
        if gpu is None
        else s.LiveGpu(
            memory_used_mb=gpu.used_mb,
            memory_total_mb=gpu.total_mb,
            utilization_percent=gpu.utilization_percent,
        ),
    )
