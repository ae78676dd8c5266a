"""A pathological request never freezes the server: /health answers throughout.

Measured by a loop-lag monitor's counters, not by wall-clock asserts: while
a 1 MB completion (a megabyte of ``x`` lines, which llama.cpp's tokenizer and
tree-sitter both find expensive) and a 1 MB generation run, the event loop
is never blocked for half a second. (The server's own monitor counts stalls
from 100 ms; on two busy cores the operating system alone can delay a
thread that long, while the faults this guards against froze the loop for
seconds.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from engine.config import Settings
from engine.engine import Engine
from services.composition import Services
from services.loop_monitor import LoopLagMonitor
from tests.support.rest_client import BASE, api_client

MEGABYTE_OF_LINES = "x\n" * 500_000

Requests = Callable[[httpx.AsyncClient], list[Coroutine[Any, Any, httpx.Response]]]


async def health_while(
    engine: Engine, services: Services, settings: Settings, requests: Requests
) -> tuple[list[httpx.Response], list[int], int]:
    """The answers to ``requests``, /health's statuses meanwhile, and the loop's stalls."""
    await services.start()
    await engine.worker_for("tiny-qwen")
    async with api_client(engine, settings, services=services) as client:
        await client.get(f"{BASE}/health")  # warm the route
        monitor = LoopLagMonitor(threshold_seconds=0.5)
        monitor.start()
        heavy = asyncio.gather(*requests(client))
        statuses: list[int] = []
        while not heavy.done():
            statuses.append((await client.get(f"{BASE}/health")).status_code)
            await asyncio.sleep(0.02)
        answers = await heavy
        stalls = monitor.figures().stalls
        await monitor.stop()
    return list(answers), statuses, stalls


async def test_health_answers_while_a_megabyte_request_runs(
    engine: Engine, services: Services, settings: Settings
) -> None:
    def requests(client: httpx.AsyncClient) -> list[Coroutine[Any, Any, httpx.Response]]:
        return [
            client.post(
                f"{BASE}/inference/completion",
                json={
                    "model_id": "tiny-qwen",
                    "context": {"language": "python", "code": MEGABYTE_OF_LINES},
                    "parameters": {"max_tokens": 4},
                },
            ),
            client.post(
                f"{BASE}/inference/generation",
                json={
                    "model_id": "tiny-qwen",
                    "prompt": "explain",
                    "context": {"existing_code": MEGABYTE_OF_LINES},
                },
            ),
        ]

    (completion, generation), statuses, stalls = await health_while(
        engine, services, settings, requests
    )
    assert completion.status_code == 200, completion.text
    assert generation.status_code == 400  # refused by its length, before tokenizing
    assert statuses and set(statuses) == {200}
    assert stalls == 0


async def test_health_answers_while_a_completion_sits_before_a_long_line_of_closers(
    engine: Engine, services: Services, settings: Settings
) -> None:
    # The cursor before 200,000 closing brackets and quotes on its line: the
    # rule for which closers a completion replaces scored each of them by
    # scanning the rest of the line again (minutes for this one request).
    def requests(client: httpx.AsyncClient) -> list[Coroutine[Any, Any, httpx.Response]]:
        return [
            client.post(
                f"{BASE}/inference/completion",
                json={
                    "model_id": "tiny-qwen",
                    "context": {
                        "language": "python",
                        "code": "f(" + closers,
                        "cursor_position": 2,
                    },
                    "parameters": {"max_tokens": 8},
                },
            )
            for closers in (")" * 200_000, '"' * 200_000, ", )" * 70_000)
        ]

    answers, statuses, stalls = await health_while(engine, services, settings, requests)
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text[:200] for a in answers]
    assert statuses and set(statuses) == {200}
    assert stalls == 0
