"""An authenticated in-process REST client for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from engine.config import Settings
from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from services.composition import Services
from tests.conftest import auth_headers

BASE = "/v1/ai"


@asynccontextmanager
async def api_client(
    engine: Engine,
    settings: Settings,
    headers: dict[str, str] | None = None,
    *,
    services: Services | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``create_app(engine, services, settings)`` with a fresh API key.

    Without ``services`` the client brings its own (closed when it ends; the
    engine is left to its owner).
    """
    own = services is None
    used = Services(engine, settings) if services is None else services
    app = create_app(engine, used, settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers=headers if headers is not None else auth_headers(settings),
            timeout=120,
        ) as client:
            yield client
    finally:
        if own:
            await used.close()
