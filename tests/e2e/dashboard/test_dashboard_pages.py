"""The docs page, the dashboard and their assets: served from the package, no other host.

Every HTML page and asset the server serves is fetched and scanned for an
absolute URL to another host where a browser would load it (``src``/``href``
attributes, CSS ``url()`` and ``@import``, script ``import``/``fetch``/
``importScripts``). The live-view route the dashboard polls is exercised over
real llama.cpp inference on the tiny models.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from engine.completion.pipeline import CompletionRequest
from engine.config import Settings
from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from lsp_server.sidecar.pages import CONTENT_SECURITY_POLICY, STATIC_DIR, asset_names
from services.composition import Services, shutdown
from tests.conftest import create_api_key

BASE = "/v1/ai"
ORIGIN = "http://127.0.0.1:8000"
PAGES = [f"{BASE}/docs", "/dashboard"]

# Where a browser loads something: markup attributes, CSS and script loaders.
_HTML_REFERENCE = re.compile(r"""\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?([^"'\s>]+)""")
_CSS_REFERENCE = re.compile(r"""url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)""")
_SCRIPT_REFERENCE = re.compile(
    r"""(?:\bimport\s*\(\s*|\bfrom\s*|\bimport\s+|\bfetch\s*\(\s*|\bimportScripts\s*\(\s*"""
    r"""|\bnew\s+(?:Worker|EventSource|WebSocket)\s*\(\s*)["'`]((?:https?:|wss?:)?//[^"'`]+)"""
)


def foreign_references(text: str, kind: str, page_url: str) -> list[str]:
    """Absolute references in ``text`` to a host other than ``page_url``'s."""
    found: list[str] = []
    if kind == "html":
        found += _HTML_REFERENCE.findall(text)
        for style in re.findall(r"<style[^>]*>(.*?)</style>", text, flags=re.S):
            found += foreign_references(style, "css", page_url)
        for script in re.findall(r"<script[^>]*>(.*?)</script>", text, flags=re.S):
            found += foreign_references(script, "js", page_url)
    elif kind == "css":
        found += [a or b for a, b in _CSS_REFERENCE.findall(text)]
    elif kind == "js":
        found += _SCRIPT_REFERENCE.findall(text)
    own = urlsplit(page_url).netloc
    foreign = []
    for reference in found:
        if reference.startswith(("data:", "#", "blob:", "javascript:")):
            continue
        absolute = urljoin(page_url, reference)
        parts = urlsplit(absolute)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != own:
            foreign.append(reference)
    return foreign


def test_the_scanner_finds_what_a_browser_would_load_from_elsewhere() -> None:
    page = f"{ORIGIN}/dashboard"
    assert foreign_references('<script src="https://cdn.example/x.js"></script>', "html", page)
    assert foreign_references("<link href='//cdn.example/x.css'>", "html", page)
    assert foreign_references("a{background:url(https://x.example/i.png)}", "css", page)
    assert foreign_references('@import "https://fonts.example/f.css";', "css", page)
    assert foreign_references('fetch("https://api.example/v1")', "js", page)
    assert foreign_references('import("https://esm.example/m.js")', "js", page)
    assert foreign_references('<style>b{src:url("https://f.example/a.woff")}</style>', "html", page)
    # Own-host, relative, data: and namespace strings are fine.
    assert not foreign_references('<script src="/dashboard/assets/a.js"></script>', "html", page)
    assert not foreign_references(f'<a href="{ORIGIN}/v1/ai/docs">', "html", page)
    assert not foreign_references(
        "i{background:url(\"data:image/svg+xml;charset=utf-8,<svg xmlns='http://www.w3.org/2000/svg'>\")}",
        "css",
        page,
    )
    namespace = 'e.setAttribute("xmlns","http://www.w3.org/2000/svg")'
    assert not foreign_references(namespace, "js", page)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, Engine, httpx.AsyncClient]]:
    engine = Engine(settings)
    services = Services(engine, settings)
    try:
        app = create_app(engine, services, settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
            yield app, engine, client
    finally:
        await shutdown(engine, services)


async def test_pages_and_assets_reference_no_other_host(settings: Settings) -> None:
    assets = asset_names()
    assert {"index.html", "dashboard.js", "dashboard.css", "docs.js"} <= set(assets)
    assert {"swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css"} <= set(assets)
    async with serving(settings) as (_, _, client):
        urls = PAGES + [f"/dashboard/assets/{name}" for name in assets]
        scanned = 0
        for url in urls:
            response = await client.get(url)  # no credentials: the shells are public
            assert response.status_code == 200, url
            kind = {".js": "js", ".css": "css", ".txt": "txt"}.get(Path(url).suffix, "html")
            problems = foreign_references(response.text, kind, ORIGIN + url)
            assert not problems, f"{url} references another host: {problems[:5]}"
            scanned += 1
            # Each page also names every script and style it loads, and they are all served.
            if kind == "html":
                for reference in _HTML_REFERENCE.findall(response.text):
                    if reference.startswith("/dashboard/assets/"):
                        assert reference.removeprefix("/dashboard/assets/") in assets, reference
        assert scanned == len(urls) >= 9


async def test_pages_forbid_other_hosts_and_hold_no_api_data(settings: Settings) -> None:
    async with serving(settings) as (_, _, client):
        for url in PAGES:
            response = await client.get(url)
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["Cache-Control"] == "no-store"
            assert '"paths"' not in response.text and "aiide_" not in response.text
        assert "default-src 'self'" in CONTENT_SECURITY_POLICY
        assert "https:" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY
        docs = (await client.get(f"{BASE}/docs")).text
        assert "/dashboard/assets/swagger-ui/swagger-ui-bundle.js" in docs
        script = (await client.get("/dashboard/assets/docs.js")).text
        assert "validatorUrl:null" in script.replace(" ", "")  # no badge from a public validator
        css = await client.get("/dashboard/assets/dashboard.css")
        assert css.headers["content-type"].startswith("text/css")
        js = await client.get("/dashboard/assets/dashboard.js")
        assert js.headers["content-type"].startswith("text/javascript")


async def test_anything_else_under_the_assets_needs_credentials(settings: Settings) -> None:
    key = create_api_key(settings)
    async with serving(settings) as (_, _, client):
        for path in [
            "/dashboard/assets/nope.js",
            "/dashboard/assets/../pages.py",
            "/dashboard/assets/%2e%2e/pages.py",
            "/dashboard/assets/",
            "/dashboard/",
        ]:
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "UNAUTHORIZED"
        with_key = await client.get("/dashboard/assets/nope.js", headers={"X-API-Key": key})
        assert with_key.status_code == 404
        assert with_key.json()["error"]["code"] == "NOT_FOUND"
        assert with_key.json()["error"]["request_id"] == with_key.headers["X-Request-ID"]
        # Nothing outside static/ is reachable, whatever the name.
        outside = await client.get(
            "/dashboard/assets/..%2f..%2fpages.py", headers={"X-API-Key": key}
        )
        assert outside.status_code == 404
    assert (STATIC_DIR / "index.html").is_file()


async def test_live_view_lists_requests_of_both_faces_without_code(settings: Settings) -> None:
    key = create_api_key(settings)
    headers = {"X-API-Key": key}
    secret_code = "def very_secret_function_name():\n    return "
    async with serving(settings) as (_, engine, client):
        refused = await client.get(f"{BASE}/monitoring/live")
        assert refused.status_code == 401
        empty = (await client.get(f"{BASE}/monitoring/live", headers=headers)).json()
        assert empty["requests"] == [] and empty["capacity"] >= 100
        assert empty["queue_length"] == 0
        assert empty["queued_by_priority"] == {
            "interactive": 0,
            "speculative": 0,
            "normal": 0,
            "batch": 0,
            "warm": 0,
        }
        rest = await client.post(
            f"{BASE}/inference/completion",
            headers=headers,
            json={
                "model_id": "tiny-qwen",
                "context": {"code": secret_code, "language": "python"},
                "parameters": {"max_tokens": 4},
            },
        )
        assert rest.status_code == 200, rest.text
        metadata = rest.json()["completion"]["metadata"]
        # The local editor's requests reach the engine with no caller.
        await engine.complete(
            CompletionRequest(code=secret_code, cursor=len(secret_code), model_id="tiny-qwen")
        )
        response = await client.get(f"{BASE}/monitoring/live", headers=headers)
        assert response.status_code == 200
        live = response.json()
        assert [r["face"] for r in live["requests"]] == ["lsp", "rest"]  # newest first
        lsp, rest_entry = live["requests"]
        assert rest_entry["model_id"] == "tiny-qwen" and rest_entry["kind"] == "completion"
        assert rest_entry["outcome"] == "success" and rest_entry["error_code"] is None
        assert rest_entry["tokens"] == metadata["tokens_used"] > 0
        assert rest_entry["prompt_tokens"] == metadata["prompt_tokens"] > 0
        assert rest_entry["cached_prompt_tokens"] == metadata["cached_prompt_tokens"]
        assert rest_entry["duration_ms"] > 0
        assert lsp["prompt_tokens"] > 0
        assert "very_secret_function_name" not in response.text
        assert rest_entry["output"] is None and lsp["output"] is None
        limited = await client.get(f"{BASE}/monitoring/live?limit=1", headers=headers)
        assert [r["face"] for r in limited.json()["requests"]] == ["lsp"]
        too_many = await client.get(f"{BASE}/monitoring/live?limit=0", headers=headers)
        assert too_many.status_code == 422
        assert set(too_many.json()) == {"error"}


async def test_live_view_shows_the_model_text_only_when_turned_on(settings: Settings) -> None:
    opted_in = settings.model_copy(
        update={"http": settings.http.model_copy(update={"dashboard_show_code": True})}
    )
    key = create_api_key(opted_in)
    headers = {"X-API-Key": key}
    async with serving(opted_in) as (_, _, client):
        rest = await client.post(
            f"{BASE}/inference/completion",
            headers=headers,
            json={
                "model_id": "tiny-qwen",
                "context": {"code": "def area(r):\n    return ", "language": "python"},
                "parameters": {"max_tokens": 6},
            },
        )
        assert rest.status_code == 200, rest.text
        live = (await client.get(f"{BASE}/monitoring/live", headers=headers)).json()
        [entry] = live["requests"]
        assert entry["output"] == rest.json()["completion"]["text"]


@pytest.mark.parametrize("limit", ["abc", "1001", "-1"])
async def test_live_view_refuses_bad_limits(settings: Settings, limit: str) -> None:
    key = create_api_key(settings)
    async with serving(settings) as (_, _, client):
        response = await client.get(
            f"{BASE}/monitoring/live", params={"limit": limit}, headers={"X-API-Key": key}
        )
        assert response.status_code in (400, 422)
        assert response.json()["error"]["code"] in ("VALIDATION_ERROR", "INVALID_REQUEST")
