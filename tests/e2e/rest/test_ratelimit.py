"""Rate limits: sliding windows per caller, 429 with Retry-After and RateLimit headers,
and the cap on concurrent inference requests (streams included)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from engine.config import RateLimitSettings, Settings
from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from lsp_server.sidecar.ratelimit import RateLimiter
from services.composition import Services, shutdown
from services.keys import ApiKeyStore
from services.store import DATABASE_FILE, Store
from tests.conftest import make_settings

BASE = "/v1/ai"
COMPLETION = f"{BASE}/inference/completion"
POLICY = re.compile(r'^"[a-z_]+";q=\d+;w=\d+(, "[a-z_]+";q=\d+;w=\d+)*$')
REMAINING = re.compile(r'^"[a-z_]+";r=\d+;t=\d+(, "[a-z_]+";r=\d+;t=\d+)*$')


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_limiter(clock: FakeClock, **limits: Any) -> RateLimiter:
    return RateLimiter(RateLimitSettings(**limits), BASE, clock=clock)


def admit(limiter: RateLimiter, caller: str, method: str, path: str) -> Any:
    policies, slot = limiter.classify(method, path)
    return limiter.admit(caller, policies, slot=slot)


# -- the limiter -----------------------------------------------------------------


def test_burst_across_a_window_boundary_is_refused() -> None:
    clock = FakeClock(1000.0)
    limiter = make_limiter(clock)
    clock.now = 1059.0  # late in one minute...
    for _ in range(100):
        decision = admit(limiter, "key:a", "POST", COMPLETION)
        assert decision.refusal is None
        limiter.release("key:a")
    clock.now = 1061.0  # ...and early in the next: a fixed window would allow 100 more
    refused = admit(limiter, "key:a", "POST", COMPLETION)
    assert refused.refusal is not None
    assert refused.refusal.policy == "inference"
    assert refused.refusal.details() == {
        "limit": 100,
        "window_seconds": 60,
        "retry_after_seconds": 58,
        "policy": "inference",
    }
    assert refused.headers()["Retry-After"] == "58"
    clock.now = 1118.9
    assert admit(limiter, "key:a", "POST", COMPLETION).refusal.retry_after_seconds == 1
    clock.now = 1119.0  # exactly when the burst leaves the window, as Retry-After said
    assert admit(limiter, "key:a", "POST", COMPLETION).refusal is None


def test_window_slides_request_by_request() -> None:
    clock = FakeClock(0.0)
    limiter = make_limiter(clock, inference_per_minute=4)
    for at in (0.0, 10.0, 20.0, 30.0):
        clock.now = at
        assert admit(limiter, "c", "POST", COMPLETION).refusal is None
        limiter.release("c")
    clock.now = 45.0
    refused = admit(limiter, "c", "POST", COMPLETION).refusal
    assert refused is not None and refused.retry_after_seconds == 15
    clock.now = 60.0  # the request from t=0 left; one place free
    assert admit(limiter, "c", "POST", COMPLETION).refusal is None
    limiter.release("c")
    assert admit(limiter, "c", "POST", COMPLETION).refusal.retry_after_seconds == 10


def test_refused_requests_are_not_counted() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock, batch_per_minute=2)
    for _ in range(2):
        assert admit(limiter, "c", "POST", f"{BASE}/batch/inference").refusal is None
    for _ in range(50):  # a client hammering while refused
        clock.now += 1
        assert admit(limiter, "c", "POST", f"{BASE}/batch/inference").refusal is not None
    clock.now = 1000.0 + 60.0
    assert admit(limiter, "c", "POST", f"{BASE}/batch/inference").refusal is None


def test_policies_by_route_and_caller() -> None:
    clock = FakeClock()
    limiter = make_limiter(
        clock, requests_per_minute=6, model_management_per_minute=2, batch_per_minute=1
    )
    names = {
        ("GET", f"{BASE}/health"): ["default"],
        ("GET", f"{BASE}/models"): ["default"],
        ("POST", f"{BASE}/models/m/load"): ["default", "model_management"],
        ("POST", f"{BASE}/inference/refactor"): ["default", "inference"],
        ("POST", f"{BASE}/orchestration/inference"): ["default", "inference"],
        ("POST", f"{BASE}/batch/inference"): ["default", "batch"],
        ("GET", f"{BASE}/batch/b1"): ["default"],
        ("GET", f"{BASE}/inferencex"): ["default"],
    }
    for (method, path), expected in names.items():
        assert [p.name for p in limiter.classify(method, path)[0]] == expected
    assert limiter.classify("POST", COMPLETION)[1] is True
    assert limiter.classify("POST", f"{BASE}/batch/inference")[1] is False

    assert admit(limiter, "c", "POST", f"{BASE}/models/m/load").refusal is None
    assert admit(limiter, "c", "POST", f"{BASE}/models/m/unload").refusal is None
    refused = admit(limiter, "c", "POST", f"{BASE}/models/m/load").refusal
    assert refused is not None and refused.policy == "model_management"
    assert refused.limit == 2
    assert admit(limiter, "c", "GET", f"{BASE}/models").refusal is None
    for _ in range(3):
        assert admit(limiter, "c", "GET", f"{BASE}/health").refusal is None
    overall = admit(limiter, "c", "GET", f"{BASE}/health").refusal
    assert overall is not None and overall.policy == "default" and overall.limit == 6
    # Another caller has its own windows.
    assert admit(limiter, "other", "POST", f"{BASE}/models/m/load").refusal is None


def test_rate_limit_headers_follow_the_draft() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock)
    decision = admit(limiter, "c", "POST", COMPLETION)
    headers = decision.headers()
    assert headers["RateLimit-Policy"] == '"default";q=1000;w=60, "inference";q=100;w=60'
    assert headers["RateLimit"] == '"default";r=999;t=60, "inference";r=99;t=60'
    assert "Retry-After" not in headers
    clock.now += 20
    later = admit(limiter, "c", "GET", f"{BASE}/health").headers()
    assert later["RateLimit"] == '"default";r=998;t=40'


def test_idle_callers_are_forgotten() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock)
    for index in range(500):
        admit(limiter, f"caller-{index}", "GET", f"{BASE}/health")
    assert len(limiter._log) == 500
    clock.now += 61
    admit(limiter, "someone", "GET", f"{BASE}/health")
    assert len(limiter._log) == 1


def test_concurrency_slots() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock, max_concurrent_inference=2)
    first = admit(limiter, "c", "POST", COMPLETION)
    second = admit(limiter, "c", "POST", COMPLETION)
    assert first.holds_slot and second.holds_slot and limiter.in_flight("c") == 2
    third = admit(limiter, "c", "POST", COMPLETION)
    assert third.refusal is not None and third.refusal.policy == "concurrency"
    assert third.refusal.details()["limit"] == 2
    assert third.headers()["Retry-After"] == "1"
    assert not third.holds_slot
    # Non-inference requests and other callers are unaffected.
    assert admit(limiter, "c", "GET", f"{BASE}/health").refusal is None
    assert admit(limiter, "d", "POST", COMPLETION).refusal is None
    limiter.release("c")
    assert admit(limiter, "c", "POST", COMPLETION).refusal is None
    # A refused request took no window place: 3 admitted inference requests so far.
    assert admit(limiter, "x", "GET", "/").headers()["RateLimit"].startswith('"default";r=999')
    assert limiter._log[("c", "inference")].__len__() == 3


# -- over HTTP ---------------------------------------------------------------------


def new_key(settings: Settings) -> tuple[str, str]:
    store = Store(settings.data_dir / DATABASE_FILE)
    try:
        created = ApiKeyStore.in_data_dir(store, settings.data_dir).create("rl")
    finally:
        store.close()
    return created.key, f"key:{created.info.id}"


@asynccontextmanager
async def app_for(
    settings: Settings, clock: FakeClock | None = None
) -> AsyncIterator[tuple[FastAPI, Engine]]:
    engine = Engine(settings)
    services = Services(engine, settings)
    try:
        if clock is None:
            yield create_app(engine, services, settings), engine
        else:
            yield create_app(engine, services, settings, clock=clock), engine
    finally:
        await shutdown(engine, services)


async def test_429_envelope_headers_and_recovery(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(
        tmp_path / "data", tiny_models, rate_limits={"inference_per_minute": 3}
    )
    key, _ = new_key(settings)
    other_key, _ = new_key(settings)
    clock = FakeClock()
    async with app_for(settings, clock) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"X-API-Key": key}
        ) as client:
            health = await client.get(f"{BASE}/health")
            assert health.status_code == 200
            assert health.headers["RateLimit-Policy"] == '"default";q=1000;w=60'
            assert health.headers["RateLimit"] == '"default";r=999;t=60'
            for _ in range(3):
                clock.now += 5
                # Invalid bodies still count: limits apply before the request is read.
                response = await client.post(COMPLETION, json={})
                assert response.status_code == 422
                assert POLICY.match(response.headers["RateLimit-Policy"])
                assert REMAINING.match(response.headers["RateLimit"])
            clock.now += 5
            refused = await client.post(COMPLETION, json={})
            assert refused.status_code == 429
            error = refused.json()["error"]
            assert error["code"] == "RATE_LIMIT_EXCEEDED"
            assert error["message"] == "Rate limit exceeded for AI inference"
            assert error["request_id"] == refused.headers["X-Request-ID"]
            details = error["details"]
            assert details["limit"] == 3
            assert details["window_seconds"] == 60
            assert details["retry_after_seconds"] == 45  # the first counted request was at +5
            assert refused.headers["Retry-After"] == str(details["retry_after_seconds"])
            assert refused.headers["RateLimit-Policy"] == (
                '"default";q=1000;w=60, "inference";q=3;w=60'
            )
            assert refused.headers["RateLimit"] == '"default";r=996;t=40, "inference";r=0;t=45'
            # Other routes and other callers still work.
            assert (await client.get(f"{BASE}/health")).status_code == 200
            other = await client.post(COMPLETION, json={}, headers={"X-API-Key": other_key})
            assert other.status_code == 422
            # Unauthenticated requests are refused before they could spend anything.
            anonymous = await client.get(f"{BASE}/health", headers={"X-API-Key": ""})
            assert anonymous.status_code == 401 and "RateLimit" not in anonymous.headers
            clock.now += details["retry_after_seconds"]
            assert (await client.post(COMPLETION, json={})).status_code == 422


async def test_rate_limits_can_be_turned_off(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    settings = make_settings(
        tmp_path / "data",
        tiny_models,
        rate_limits={"enabled": False, "requests_per_minute": 1},
    )
    key, _ = new_key(settings)
    async with app_for(settings) as (app, _):
        assert app.state.rate_limiter is None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"X-API-Key": key}
        ) as client:
            for _ in range(3):
                response = await client.get(f"{BASE}/health")
                assert response.status_code == 200 and "RateLimit" not in response.headers


def add_held_stream(app: FastAPI, release: asyncio.Event) -> None:
    """An inference-class route whose stream stays open until ``release`` is set."""

    @app.post(f"{BASE}/inference/test-hold")
    async def hold() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"started\n"
            await release.wait()
            yield b"finished\n"

        return StreamingResponse(body(), media_type="text/plain")


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_concurrency_cap_holds_for_whole_streams(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(
        tmp_path / "data", tiny_models, rate_limits={"max_concurrent_inference": 2}
    )
    key, caller = new_key(settings)
    release = asyncio.Event()
    async with app_for(settings) as (app, _), served(app) as base_url:
        add_held_stream(app, release)
        limiter: RateLimiter = app.state.rate_limiter
        async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as client:
            started = asyncio.Queue[str]()

            async def stream() -> str:
                async with client.stream("POST", f"{BASE}/inference/test-hold") as response:
                    assert response.status_code == 200
                    lines = response.aiter_lines()
                    await started.put(await anext(lines))
                    return "".join([line async for line in lines])

            streams = [asyncio.create_task(stream()) for _ in range(2)]
            for _ in streams:
                assert await asyncio.wait_for(started.get(), 10) == "started"
            assert limiter.in_flight(caller) == 2

            refused = await client.post(f"{BASE}/inference/test-hold")
            assert refused.status_code == 429
            error = refused.json()["error"]
            assert error["code"] == "RATE_LIMIT_EXCEEDED"
            assert error["details"]["policy"] == "concurrency"
            assert error["details"]["limit"] == 2
            assert refused.headers["Retry-After"] == str(error["details"]["retry_after_seconds"])
            # Other kinds of request are not held up.
            assert (await client.get(f"{BASE}/health")).status_code == 200

            release.set()
            assert await asyncio.gather(*streams) == ["finished", "finished"]
            await wait_until(lambda: limiter.in_flight(caller) == 0)
            assert (await client.post(f"{BASE}/inference/test-hold")).status_code == 200

            # A client that disconnects mid-stream gives its slot back.
            release.clear()
            async with client.stream("POST", f"{BASE}/inference/test-hold") as response:
                assert await anext(response.aiter_lines()) == "started"
                assert limiter.in_flight(caller) == 1
            await wait_until(lambda: limiter.in_flight(caller) == 0)
            release.set()


@pytest.mark.parametrize("limit", [1, 3])
async def test_real_streamed_completions_respect_the_cap(
    tmp_path: Path, tiny_models: dict[str, Path], limit: int
) -> None:
    settings = make_settings(
        tmp_path / "data", tiny_models, rate_limits={"max_concurrent_inference": limit}
    )
    key, caller = new_key(settings)
    async with app_for(settings) as (app, engine), served(app) as base_url:
        await engine.worker_for("tiny-qwen")
        limiter: RateLimiter = app.state.rate_limiter
        body = {
            "model_id": "tiny-qwen",
            "context": {"code": "def f():\n    return "},
            "parameters": {"max_tokens": 8},
            "options": {"stream": True},
        }
        async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as client:

            async def one() -> int:
                response = await client.post(COMPLETION, json=body, timeout=60)
                return response.status_code

            statuses = await asyncio.gather(*(one() for _ in range(limit + 4)))
        assert set(statuses) <= {200, 429}
        assert statuses.count(200) >= limit
        assert limiter.in_flight(caller) == 0


async def test_a_trickling_body_times_out_without_holding_a_slot(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """Slow clients hit the body deadline (408) before they can take a concurrency slot."""
    settings = make_settings(
        tmp_path / "data",
        tiny_models,
        rate_limits={"max_concurrent_inference": 2},
        http={"body_timeout_seconds": 1.5},
    )
    key, caller = new_key(settings)
    async with app_for(settings) as (app, _), served(app) as base_url:
        limiter: RateLimiter = app.state.rate_limiter
        port = int(base_url.rsplit(":", 1)[1])
        tricklers = []
        for _ in range(4):  # more than the cap
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST {COMPLETION} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
                "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{".encode()
            )
            await writer.drain()
            tricklers.append((reader, writer))
        async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as client:
            ok = await client.post(
                COMPLETION,
                json={
                    "model_id": "tiny-qwen",
                    "context": {"code": "x = "},
                    "parameters": {"max_tokens": 2},
                },
                timeout=60,
            )
        assert ok.status_code == 200, ok.text
        for reader, writer in tricklers:
            head = await asyncio.wait_for(reader.read(4096), timeout=30)
            assert head.startswith(b"HTTP/1.1 408"), head[:80]
            assert b"REQUEST_TIMEOUT" in head
            writer.close()
        assert limiter.in_flight(caller) == 0
