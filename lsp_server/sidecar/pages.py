"""The browser pages: the dashboard and the interactive API docs, from package data.

Every byte a browser loads comes from this server: the built dashboard and
Swagger UI sit in ``dashboard/static`` (built from ``dashboard/src`` and npm
packages by ``dashboard/build.mjs``, committed, shipped as package data), so
the pages work on a machine with no network and tell no third party what the
user browses. The pages and their assets are public and hold no API data;
every call they make goes to the API with the credential the user pastes,
under the same authentication and rate limits as any client. A strict
Content-Security-Policy makes the browser refuse any other host as well.
"""

from __future__ import annotations

import html
import json
import mimetypes
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from lsp_server.sidecar.errors import envelope, new_request_id

STATIC_DIR = Path(__file__).resolve().parent / "dashboard" / "static"
DASHBOARD_PATH = "/dashboard"
ASSETS_PREFIX = "/dashboard/assets/"

# Scripts and styles from this origin only; Swagger UI sets inline styles and
# uses data: images, nothing else is allowed (no frames, no other hosts).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain"}


def asset_names(static_dir: Path = STATIC_DIR) -> dict[str, Path]:
    """Every servable file under ``static_dir`` by its URL path below the assets prefix."""
    return {
        path.relative_to(static_dir).as_posix(): path
        for path in sorted(static_dir.rglob("*"))
        if path.is_file()
    }


def docs_page(openapi_url: str, title: str, api_prefix: str) -> HTMLResponse:
    """Swagger UI that asks for a credential and sends it with every request.

    The page itself is public and holds no API data; the OpenAPI document it
    loads (and every call made from it) needs the credential like any client.
    The credential is kept in session storage, shared with the dashboard.
    """
    config = html.escape(json.dumps({"url": openapi_url, "api": api_prefix}), quote=True)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="stylesheet" href="{ASSETS_PREFIX}swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="{ASSETS_PREFIX}docs.css">
</head><body data-config="{config}">
<form id="credential">
<label>API key or JWT: <input id="secret" type="password" size="60" autocomplete="off"></label>
<button type="submit">Load API</button> <a href="{DASHBOARD_PATH}">Dashboard</a>
<span id="refused" role="alert"></span></form>
<div id="swagger-ui"></div>
<script src="{ASSETS_PREFIX}swagger-ui/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PREFIX}docs.js"></script>
</body></html>
"""
    return HTMLResponse(page, headers=_PAGE_HEADERS)


def install_pages(app: FastAPI, api_prefix: str, static_dir: Path = STATIC_DIR) -> frozenset[str]:
    """Serve the docs page, the dashboard and their assets; returns their (public) paths."""
    docs_url = f"{api_prefix}/docs"
    assets = asset_names(static_dir)
    index = static_dir / "index.html"

    async def docs(_: Request) -> Response:
        return docs_page(f"{api_prefix}/openapi.json", app.title, api_prefix)

    async def dashboard(_: Request) -> Response:
        return HTMLResponse(index.read_bytes(), headers=_PAGE_HEADERS)

    async def asset(request: Request) -> Response:
        # Only files that exist in the package are served: the name is looked
        # up, never joined to a path, so nothing outside static/ is reachable.
        name = request.path_params["name"]
        path = assets.get(name)
        if path is None:
            request_id = getattr(request.state, "request_id", None)
            return envelope(
                404,
                "NOT_FOUND",
                "No such dashboard asset",
                request_id if isinstance(request_id, str) else new_request_id(),
                {"asset": name[:200]},
            )
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        return Response(
            path.read_bytes(),
            media_type=kind or "application/octet-stream",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    app.add_route(docs_url, docs, include_in_schema=False)
    app.add_route(DASHBOARD_PATH, dashboard, include_in_schema=False)
    app.add_route(ASSETS_PREFIX + "{name:path}", asset, include_in_schema=False)
    return frozenset({docs_url, DASHBOARD_PATH, *(ASSETS_PREFIX + name for name in assets)})
