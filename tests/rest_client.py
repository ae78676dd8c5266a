"""An authenticated in-process REST client for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from engine.config import Settings
from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from tests.conftest import auth_headers

BASE = "/v1/ai"


@asynccontextmanager
async def api_client(
    engine: Engine, settings: Settings, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``create_app(engine, settings)`` with a fresh API key."""
    app = create_app(engine, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers=headers if headers is not None else auth_headers(settings),
        timeout=120,
    ) as client:
        yield client
