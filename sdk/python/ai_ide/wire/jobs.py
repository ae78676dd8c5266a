"""Background jobs: requests sent with ``options.async``."""

from __future__ import annotations

from typing import Literal

from ai_ide.wire.common import WireModel
from ai_ide.wire.errors import JobError

JobStatus = Literal["queued", "running", "completed", "failed"]
JOB_TERMINAL_STATUSES = frozenset({"completed", "failed"})


class JobAccepted(WireModel):
    """202 answer to a request with ``options.async``."""

    job_id: str
    status: JobStatus
    status_url: str


class JobStatusResponse(WireModel):
    """``GET /jobs/{id}``: the job and, once done, the synchronous call's body."""

    job_id: str
    type: str
    status: JobStatus
    created_at: str
    started_at: str | None
    finished_at: str | None
    result: dict[str, object] | None
    error: JobError | None
