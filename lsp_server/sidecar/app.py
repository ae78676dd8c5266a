"""The REST API application factory."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import Depends, FastAPI

from engine.config import Settings
from engine.engine import Engine
from lsp_server.sidecar.auth import Authenticator, AuthMiddleware, require_caller
from lsp_server.sidecar.errors import install_error_handlers
from lsp_server.sidecar.middleware import RequestContextMiddleware
from lsp_server.sidecar.openapi import install_openapi
from lsp_server.sidecar.pages import install_pages
from lsp_server.sidecar.ratelimit import RateLimitMiddleware, build_rate_limiter
from lsp_server.sidecar.recent import RecentRequests
from lsp_server.sidecar.routes import (
    batch,
    inference,
    jobs,
    live,
    models,
    monitoring,
    orchestration,
    system,
    webhooks,
)
from services.composition import Services

API_PREFIX = "/v1/ai"


def create_app(
    engine: Engine,
    services: Services,
    settings: Settings,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """A FastAPI app serving the AI Services API from ``engine`` and ``services``.

    Every route requires credentials (``settings.auth``) and counts against
    the caller's rate limits (``settings.rate_limits``, timed by ``clock``).
    With API keys as the only method and no key yet, one is created in
    ``<data_dir>/api-key`` first.
    """
    app = FastAPI(
        title="ai-ide AI Services API",
        version="1.0.0",
        description="Local code-assistant models over llama.cpp.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served below: a public page that asks for a credential
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        dependencies=[Depends(require_caller)],
        # A path with a trailing slash is an unknown path (404 in the error
        # shape), not a 307 whose Location is built from the Host header.
        redirect_slashes=False,
    )
    app.state.engine = engine
    app.state.services = services
    app.state.settings = settings
    app.state.authenticator = authenticator = Authenticator.from_settings(settings, services.store)
    install_error_handlers(app)
    install_openapi(app)
    inference.register_jobs(engine, services.jobs)
    batch.register_jobs(engine, services)
    for router in (
        models.router,
        inference.router,
        orchestration.router,
        batch.router,
        jobs.router,
        monitoring.router,
        live.router,
        system.router,
        webhooks.router,
    ):
        app.include_router(router, prefix=API_PREFIX)

    # The dashboard's live view: the engine's inference records, in memory.
    app.state.recent_requests = recent = RecentRequests(
        keep_output=settings.http.dashboard_show_code
    )
    recent.attach(engine.records)
    app.router.on_shutdown.append(recent.detach)
    # The docs page, the dashboard and their assets: public shells, no API data.
    public_paths = install_pages(app, API_PREFIX)
    # The middleware added last runs first: request ids and size limits, then
    # authentication (before routing, so unknown paths are 401 too), then limits.
    app.state.rate_limiter = None
    if settings.rate_limits.enabled:
        # In Redis with rate_limits.redis_url (shared by replicas), else in memory.
        limiter = build_rate_limiter(settings.rate_limits, API_PREFIX, clock=clock)
        app.state.rate_limiter = limiter
        app.router.on_shutdown.append(limiter.close)
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(AuthMiddleware, authenticator=authenticator, public_paths=public_paths)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        max_json_depth=settings.http.max_json_depth,
        body_timeout_seconds=settings.http.body_timeout_seconds,
    )
    return app
