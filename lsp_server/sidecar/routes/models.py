"""Model management: list, load, unload."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from ai_ide import wire as s
from lsp_server.sidecar import convert
from lsp_server.sidecar.deps import EngineDep, ServicesDep, checked_model_id

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=s.ModelList, summary="List available models")
async def list_models(
    engine: EngineDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> s.ModelList:
    """Every catalog model with its status, measured memory and performance."""
    views = engine.list_models()
    page = views[offset : offset + limit]
    # Reading metrics writes the pending records first: a store transaction,
    # kept off the event loop (the language server may share it).
    figures = await asyncio.to_thread(lambda: [services.metrics.metrics(v.spec.id) for v in page])
    return s.ModelList(
        models=[convert.to_model_entry(v, m) for v, m in zip(page, figures, strict=True)],
        pagination=s.Pagination(total_count=len(views), has_more=offset + limit < len(views)),
    )


@router.post(
    "/{model_id}/load",
    response_model=s.LoadResponse,
    status_code=202,
    summary="Load a model into memory",
)
async def load_model(
    model_id: str,
    engine: EngineDep,
    response: Response,
    body: Annotated[s.LoadRequest | None, Body()] = None,
) -> s.LoadResponse:
    """Queue a load by priority; 202 while loading, 200 if already loaded."""
    checked_model_id(engine, model_id)
    options = body or s.LoadRequest()
    ticket = await engine.load_model(
        model_id, options.priority, float(options.timeout_seconds), options.force_reload
    )
    if ticket.status == "loaded":
        response.status_code = 200
    return convert.to_load_response(ticket)


@router.post("/{model_id}/unload", response_model=s.UnloadResponse, summary="Unload a model")
async def unload_model(model_id: str, engine: EngineDep) -> s.UnloadResponse:
    """Free the model's memory; reports what was measured."""
    checked_model_id(engine, model_id)
    return convert.to_unload_response(await engine.unload_model(model_id))
