"""What authentication and rate limiting cost, measured in one process.

1. Throughput of ``GET /v1/ai/health`` through the ASGI app (httpx's ASGI
   transport, one client, sequential requests): without auth and limits, with
   an API key, with an HS256 JWT.
2. A cached completion (``options.cache: true``, default model) end to end,
   with auth (API key) and rate limiting vs the same app with both removed:
   median time ratio. Target: <= 1.10.

Both apps share one Engine (and so one completion cache); measurements
alternate between them. The limits are raised so that the benchmark itself
is never refused; the sliding-window bookkeeping runs all the same.

    python bench/bench_auth_overhead.py [--health-rounds 2000] [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import jwt
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.common import SAMPLE_PYTHON, default_model_settings, median, report
from engine.config import AuthSettings, Settings
from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from lsp_server.sidecar.auth import AuthMiddleware
from lsp_server.sidecar.deps import Caller
from lsp_server.sidecar.ratelimit import RateLimitMiddleware
from services.composition import Services, shutdown
from services.keys import ApiKeyStore

SECRET = "bench-secret-" + "x" * 32
BENCH_CALLER = Caller(id="key:bench", kind="api_key")
BODY = {
    "context": {"language": "python", "code": SAMPLE_PYTHON + "\n\ndef largest(shapes):\n    "},
    "parameters": {"max_tokens": 16, "temperature": 0.0},
    "options": {"cache": True},
}


class FixedCaller:
    """Stands in for the auth middleware: every request is the same caller, unchecked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["caller"] = BENCH_CALLER
        await self.app(scope, receive, send)


def without_auth(engine: Engine, services: Services, settings: Settings) -> FastAPI:
    """The same app with the auth and rate-limit layers taken out (never a server mode)."""
    app = create_app(engine, services, settings)
    removed = (AuthMiddleware, RateLimitMiddleware)
    app.user_middleware = [m for m in app.user_middleware if m.cls not in removed]
    app.add_middleware(FixedCaller)
    return app


async def timed_health(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    """Milliseconds for one GET /health."""
    started = time.perf_counter()
    response = await client.get("/v1/ai/health", headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"health answered {response.status_code}: {response.text}")
    return elapsed * 1000


async def timed_completion(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = await client.post("/v1/ai/inference/completion", json=BODY, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"completion answered {response.status_code}: {response.text}")
    return elapsed * 1000


async def main(health_rounds: int, rounds: int) -> None:
    settings = default_model_settings(n_threads=os.cpu_count())
    huge = 10**9
    settings = settings.model_copy(
        update={
            "auth": AuthSettings(api_keys_enabled=True, jwt_secret=SecretStr(SECRET)),
            "rate_limits": settings.rate_limits.model_copy(
                update={
                    "requests_per_minute": huge,
                    "inference_per_minute": huge,
                    "max_concurrent_inference": 64,
                }
            ),
        }
    )
    engine = Engine(settings)
    services = Services(engine, settings)
    key = ApiKeyStore.in_data_dir(services.store, settings.data_dir).create("bench").key
    token = jwt.encode({"sub": "bench", "exp": int(time.time()) + 3600}, SECRET, "HS256")
    secured = create_app(engine, services, settings)
    bare = without_auth(engine, services, settings)
    key_headers = {"X-API-Key": key}
    jwt_headers = {"Authorization": f"Bearer {token}"}
    transport_secured = httpx.ASGITransport(app=secured)
    transport_bare = httpx.ASGITransport(app=bare)
    async with (
        httpx.AsyncClient(transport=transport_secured, base_url="http://bench", timeout=300) as s,
        httpx.AsyncClient(transport=transport_bare, base_url="http://bench", timeout=300) as b,
    ):
        modes = {"none": (b, {}), "api_key": (s, key_headers), "jwt": (s, jwt_headers)}
        health: dict[str, list[float]] = {mode: [] for mode in modes}
        for index in range(health_rounds + 50):
            # Alternate request by request, so load from elsewhere hits every mode alike.
            for mode, (client, headers) in modes.items():
                elapsed = await timed_health(client, headers)
                if index >= 50:  # warm-up
                    health[mode].append(elapsed)
        rps = {mode: 1000 / statistics.fmean(times) for mode, times in health.items()}
        print(
            "GET /health, sequential requests/s: "
            f"no auth {rps['none']:.0f}, API key {rps['api_key']:.0f}, JWT {rps['jwt']:.0f}"
        )
        for mode in ("api_key", "jwt"):
            added_us = (median(health[mode]) - median(health["none"])) * 1000
            print(f"  {mode}: median added per request {added_us:.0f} us")
        report(
            "health_median_latency_key_vs_none",
            median(health["api_key"]) / median(health["none"]),
            "<= 1.25",
        )

        await timed_completion(b, {})  # fills the completion cache (loads the model)
        secured_ms: list[float] = []
        bare_ms: list[float] = []
        for _ in range(rounds):
            secured_ms.append(await timed_completion(s, key_headers))
            bare_ms.append(await timed_completion(b, {}))
    print(
        f"cached completion median: with auth+limits {median(secured_ms):.3f} ms, "
        f"without {median(bare_ms):.3f} ms ({rounds} rounds each)"
    )
    report("cached_completion_auth_overhead_ratio", median(secured_ms) / median(bare_ms), "<= 1.10")
    await shutdown(engine, services)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--health-rounds", type=int, default=2000, help="health requests per mode")
    parser.add_argument("--rounds", type=int, default=300, help="cached completions per side")
    args = parser.parse_args()
    asyncio.run(main(args.health_rounds, args.rounds))
