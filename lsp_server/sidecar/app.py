"""The REST API application factory."""

from __future__ import annotations

from fastapi import FastAPI

from engine.config import Settings
from engine.engine import Engine
from lsp_server.sidecar.errors import install_error_handlers
from lsp_server.sidecar.middleware import RequestContextMiddleware
from lsp_server.sidecar.routes import inference, models, system

API_PREFIX = "/v1/ai"


def create_app(engine: Engine, settings: Settings) -> FastAPI:
    """A FastAPI app serving the AI Services API from ``engine``."""
    app = FastAPI(
        title="ai-ide AI Services API",
        version="1.0.0",
        description="Local code-assistant models over llama.cpp.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    install_error_handlers(app)
    for router in (models.router, inference.router, system.router):
        app.include_router(router, prefix=API_PREFIX)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.http.max_body_bytes)
    return app
