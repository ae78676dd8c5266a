"""The dashboard and the API docs in a real Chromium, against a live ``ai-ide serve``.

Debian's Chromium (``CHROMIUM`` or ``chromium`` on PATH), driven by the
Playwright Python package with that executable: no browser is downloaded.
The server runs the tiny generated models with real llama.cpp. Every request
the browser makes is watched: one to any host but the server's fails the test
(the pages must work offline). Screenshots go to ``$CI_ARTIFACTS/dashboard``,
else ``tests/artifacts/dashboard`` (ignored by git). Without Chromium or
Playwright the tests skip, or fail when ``BROWSER_TESTS=required`` (as in CI).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.live_server import ROOT, LiveServer, serve_tiny_models

pytestmark = pytest.mark.browser
TIMEOUT_MS = 60_000


def _missing(reason: str) -> None:
    if os.environ.get("BROWSER_TESTS") == "required":
        pytest.fail(f"BROWSER_TESTS=required but {reason}")
    pytest.skip(reason)


def artifacts_dir() -> Path:
    """Where screenshots go: kept by CI as artifacts, ignored by git."""
    base = os.environ.get("CI_ARTIFACTS")
    folder = Path(base) / "dashboard" if base else ROOT / "tests" / "artifacts" / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or ""
    if not path:
        _missing("Chromium not found (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    return path


@pytest.fixture(scope="module")
def server(
    chromium_path: str, tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]
) -> Iterator[LiveServer]:
    models = {name: tiny_models[name] for name in ("tiny-qwen", "tiny-codellama")}
    with serve_tiny_models(tmp_path_factory.mktemp("dashboard-server"), models) as live:
        yield live


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A fresh tab (fresh session storage) that may talk to the server only."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    own = urlsplit(server.root_url).netloc
    elsewhere: list[str] = []

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert not elsewhere, f"the page asked another host: {elsewhere[:5]}"
    assert not errors, f"script errors on the page: {errors[:5]}"


def log_in(page: Any, server: LiveServer, secret: str) -> None:
    page.goto(f"{server.root_url}/dashboard?poll_ms=500")
    page.fill("#credential", secret)
    page.click("#login-form button[type=submit]")


def model_row(page: Any, model_id: str) -> Any:
    return page.locator(f'#models tr[data-model="{model_id}"]')


def test_a_wrong_key_is_refused(page: Any, server: LiveServer) -> None:
    log_in(page, server, "aiide_0000000000000000_not-the-key")
    page.wait_for_selector("#login-error:has-text('refused')")
    assert page.is_hidden("#app")
    assert page.evaluate("sessionStorage.getItem('ai-ide-credential')") is None
    page.screenshot(path=str(artifacts_dir() / "dashboard-wrong-key.png"))
    # Nothing the dashboard shows comes without the key.
    refused = httpx.get(f"{server.root_url}/v1/ai/monitoring/live")
    assert refused.status_code == 401


def test_log_in_load_complete_watch_charts_and_unload(page: Any, server: LiveServer) -> None:
    headers = {"X-API-Key": server.api_key}
    # A subscription whose receiver is down: the model's load makes a failing delivery.
    hook = httpx.post(
        f"{server.root_url}/v1/ai/webhooks/ai-events",
        headers=headers,
        json={
            "url": "http://127.0.0.1:9/hook",
            "events": ["model_loaded"],
            "secret": "a-webhook-secret-of-some-length-0123456789",
        },
    )
    assert hook.status_code == 201, hook.text
    log_in(page, server, server.api_key)
    page.wait_for_selector("#app:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('ai-ide-credential')") == server.api_key
    row = model_row(page, "tiny-qwen")
    row.locator("[data-field=status]:text-is('available')").wait_for()

    # Load by clicking; the row follows the load to the end.
    row.locator("button[data-action=load]").click()
    row.locator("[data-field=status]:text-is('loaded')").wait_for()
    assert "100%" in row.inner_text()
    assert re.search(r"\d+(\.\d)? MB", row.inner_text()), row.inner_text()

    # Completions from the playground (and one script), then the charts move.
    assert "over 0 requests" in page.inner_text("[data-testid=latency-now]")
    page.select_option("#play-model", "tiny-qwen")
    page.fill("#play-code", "def add(a, b):\n    return ")
    page.click("#play-code")
    page.keyboard.press("Control+End")
    assert page.inner_text("#play-cursor") == str(len("def add(a, b):\n    return "))
    for _ in range(2):
        with page.expect_response(lambda r: r.url.endswith("/inference/completion")) as answer:
            page.click("#play-run")
        assert answer.value.status == 200
        page.wait_for_selector("[data-testid=completion]")
    assert "ms" in page.inner_text("#play-timings")
    scripted = httpx.post(
        f"{server.root_url}/v1/ai/inference/completion",
        headers=headers,
        json={
            "model_id": "tiny-qwen",
            "context": {"code": "x = "},
            "parameters": {"max_tokens": 4},
        },
        timeout=60,
    )
    assert scripted.status_code == 200
    page.wait_for_function(
        "() => /over [3-9]\\d* requests/.test("
        "document.querySelector('[data-testid=latency-now]').textContent)"
    )
    assert re.search(r"p50 \d+\.\d ms", page.inner_text("[data-testid=latency-now]"))
    assert not page.inner_text("[data-testid=tokens-now]").startswith("0.00")
    assert page.locator("#chart-latency canvas").count() == 1
    requests = page.locator("#requests tbody tr")
    assert requests.count() >= 3
    assert "REST" in requests.first.inner_text() and "tiny-qwen" in requests.first.inner_text()
    page.screenshot(path=str(artifacts_dir() / "dashboard.png"), full_page=True)

    # The webhook's delivery log, with redeliver.
    page.reload()
    page.wait_for_selector("#app:not([hidden])")  # the tab's session storage logs in again
    page.locator(f'#webhooks tr[data-webhook="{hook.json()["id"]}"] button').click()
    delivery = page.locator("#deliveries tr[data-delivery]").first
    delivery.wait_for()
    assert "model_loaded" in delivery.inner_text()
    with page.expect_response(lambda r: r.url.endswith("/redeliver")) as redelivered:
        delivery.locator("button[data-action=redeliver]").click()
    assert redelivered.value.status == 202

    # Unload asks first: dismissing keeps the model, accepting unloads it.
    row = model_row(page, "tiny-qwen")
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("button[data-action=unload]").click()
    page.wait_for_timeout(700)
    assert row.locator("[data-field=status]").inner_text() == "loaded"
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_response(lambda r: r.url.endswith("/tiny-qwen/unload")) as unloaded:
        row.locator("button[data-action=unload]").click()
    assert unloaded.value.status == 200
    assert messages and "Unload tiny-qwen?" in messages[0]
    row.locator("[data-field=status]:text-is('available')").wait_for()
    models = httpx.get(f"{server.root_url}/v1/ai/models", headers=headers).json()["models"]
    assert {m["id"]: m["status"] for m in models}["tiny-qwen"] == "available"


def test_docs_page_renders_offline(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.root_url}/v1/ai/docs")
    page.fill("#secret", server.api_key)
    page.click("#credential button[type=submit]")
    page.wait_for_selector(".opblock-summary")
    operations = page.locator(".opblock-summary").count()
    assert operations >= 20, operations
    assert page.locator(".opblock-summary:has-text('List available models')").is_visible()
    assert page.locator(".info .title:has-text('AI Services API')").is_visible()
    page.screenshot(path=str(artifacts_dir() / "docs.png"))


def test_docs_page_says_when_the_credential_is_refused(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.root_url}/v1/ai/docs")
    page.fill("#secret", "aiide_0000000000000000_wrong")
    page.click("#credential button[type=submit]")
    page.wait_for_selector("#refused:has-text('refused')")
    assert page.locator(".opblock-summary").count() == 0
