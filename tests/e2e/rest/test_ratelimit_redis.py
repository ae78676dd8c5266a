"""Rate limits shared through a real Redis: one quota for every replica, and Redis outages.

Each :class:`SharedRateLimiter` stands for one replica (its own in-memory
fallback and slots, one Redis between them). The Redis server is started by
the test session on loopback (tests/support/servers.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from engine.config import RateLimitSettings, Settings
from engine.engine import Engine
from lsp_server.sidecar.ratelimit import Policy, SharedRateLimiter, build_rate_limiter
from tests.conftest import auth_headers, make_settings
from tests.support.rest_client import api_client
from tests.support.servers import RedisServer, free_port

BASE = "/v1/ai"
COMPLETION = f"{BASE}/inference/completion"
HEALTH = f"{BASE}/health"


def shared(url: str, **limits: Any) -> SharedRateLimiter:
    settings = RateLimitSettings(redis_url=url, **limits)
    limiter = build_rate_limiter(settings, BASE)
    assert isinstance(limiter, SharedRateLimiter)
    return limiter


async def check(limiter: SharedRateLimiter, caller: str, method: str, path: str) -> Any:
    policies, slot = limiter.classify(method, path)
    return await limiter.check(caller, policies, slot=slot)


async def test_two_replicas_share_one_quota(redis_server: RedisServer) -> None:
    url = redis_server.url()
    a, b = shared(url, inference_per_minute=10), shared(url, inference_per_minute=10)
    try:
        for i in range(10):
            decision = await check(a if i % 2 else b, "key:x", "POST", COMPLETION)
            assert decision.refusal is None, decision.refusal
            (a if i % 2 else b).release("key:x")
        # The eleventh, on either replica, is over the one shared quota.
        for replica in (a, b):
            refused = await check(replica, "key:x", "POST", COMPLETION)
            assert refused.refusal is not None and refused.refusal.policy == "inference"
            assert 1 <= refused.refusal.retry_after_seconds <= 60
            assert refused.headers()["Retry-After"] == str(refused.refusal.retry_after_seconds)
        # Remaining counts come from Redis: both replicas see the other's requests.
        states = {q.policy.name: q.remaining for q in refused.quotas}
        assert states == {"default": 1000 - 10, "inference": 0}
        # Another caller has a quota of its own.
        other = await check(a, "key:y", "POST", COMPLETION)
        assert other.refusal is None
        a.release("key:y")
        assert a.fallbacks == b.fallbacks == 0
    finally:
        await a.close()
        await b.close()


async def test_shared_window_slides_in_redis_time(redis_server: RedisServer) -> None:
    """A quota of 2 per second: the third request waits until the first leaves the window."""
    url = redis_server.url()
    limiter = shared(url, requests_per_minute=2)
    # A one-second window keeps the test short; the Lua script takes any window.
    limiter.local.overall = Policy("default", 2, 1, limiter.local.overall.message)
    try:
        first = await check(limiter, "key:w", "GET", HEALTH)
        second = await check(limiter, "key:w", "GET", HEALTH)
        assert first.refusal is None and second.refusal is None
        refused = await check(limiter, "key:w", "GET", HEALTH)
        assert refused.refusal is not None and refused.refusal.retry_after_seconds == 1
        deadline = time.monotonic() + 30
        while (await check(limiter, "key:w", "GET", HEALTH)).refusal is not None:
            assert time.monotonic() < deadline, "the window never slid"
            await asyncio.sleep(0.05)
    finally:
        await limiter.close()


async def test_unreachable_redis_falls_back_to_this_replicas_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on this port: every Redis call fails at once.
    limiter = shared(f"redis://127.0.0.1:{free_port()}/0", inference_per_minute=3)
    try:
        with caplog.at_level("WARNING", logger="lsp_server.sidecar.ratelimit"):
            decisions = [await check(limiter, "key:z", "POST", COMPLETION) for _ in range(4)]
            for _ in range(3):
                limiter.release("key:z")
        # Fail open, but not unlimited: the local quota of 3 still holds.
        assert [d.refusal is None for d in decisions] == [True, True, True, False]
        assert limiter.fallbacks == 4
        warnings = [r for r in caplog.records if "Redis failed" in r.getMessage()]
        assert len(warnings) == 1  # one line per outage, not one per request
    finally:
        await limiter.close()


async def test_fallbacks_are_counted_in_prometheus(engine: Engine, tmp_path: Path) -> None:
    settings: Settings = make_settings(
        tmp_path / "data",
        {},
        rate_limits={"redis_url": f"redis://127.0.0.1:{free_port()}/0"},
    )
    async with api_client(engine, settings, auth_headers(settings)) as client:
        for _ in range(3):
            assert (await client.get(HEALTH)).status_code == 200
        text = (await client.get(f"{BASE}/monitoring/prometheus")).text
    line = next(x for x in text.splitlines() if x.startswith("ai_ide_rate_limit_fallbacks_total"))
    assert float(line.split()[1]) >= 4  # the three health checks and the scrape itself


async def test_the_app_limits_through_redis(
    engine: Engine, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Through HTTP: two apps (replicas) on one Redis; the 429 carries Retry-After."""
    url = redis_server.url()
    settings = make_settings(
        tmp_path / "apps", {}, rate_limits={"redis_url": url, "requests_per_minute": 4}
    )
    headers = auth_headers(settings)
    statuses: list[int] = []
    async with (
        api_client(engine, settings, headers) as first,
        api_client(engine, settings, headers) as second,
    ):
        for i in range(4):
            statuses.append((await (first if i % 2 else second).get(HEALTH)).status_code)
        refused: httpx.Response = await first.get(HEALTH)
    assert statuses == [200, 200, 200, 200]
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert refused.headers["Retry-After"] == str(body["error"]["details"]["retry_after_seconds"])
    # The windows really are in Redis.
    client = aioredis.Redis.from_url(url)
    try:
        keys = [k.decode() async for k in client.scan_iter("ai-ide:ratelimit:*")]
    finally:
        await client.aclose()
    assert any(k.endswith(":default") for k in keys)
