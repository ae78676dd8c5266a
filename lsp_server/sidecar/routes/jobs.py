"""Async jobs: the status and result of requests sent with ``options.async``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path

from ai_ide import wire as s
from lsp_server.sidecar import convert
from lsp_server.sidecar.deps import CallerDep, ServicesDep

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=s.JobStatusResponse, summary="Status of an async job")
async def job_status(
    job_id: Annotated[str, Path(max_length=64)],
    services: ServicesDep,
    caller: CallerDep,
) -> s.JobStatusResponse:
    """The job's status and, once completed, the body the synchronous call returns.

    Jobs belong to their caller: another caller's job id is 404. The store
    is read on a thread: with PostgreSQL it is a network round trip.
    """
    return convert.to_job_status(await asyncio.to_thread(services.jobs.get, job_id, caller.id))
