"""Batch throughput (requests/s) vs the same requests sent one by one, in one run.

Eight completion requests for the default model, through the REST app: once
as one ``POST /batch/inference`` (they decode together in the model's
continuous batch), once as eight ``POST /inference/completion`` calls one
after another. Prints requests/s of both and the ratio.

    python bench/bench_batch.py [--requests 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import default_model_settings, median, report
from engine.engine import Engine
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown
from services.keys import ApiKeyStore

SNIPPETS = [
    "def parse_config(path):\n    ",
    "class Stack:\n    def push(self, item):\n        ",
    "fn main() {\n    let total = ",
    "function sum(values) {\n  return ",
    "def fibonacci(n):\n    if n <= 1:\n        return n\n    return",
    "import json\n\ndef load(path):\n    with open(path) as handle:\n        ",
    "for (let i = 0; i < items.length; i++) {\n  ",
    "public int max(int a, int b) {\n    return ",
]


def request(index: int) -> dict[str, object]:
    return {
        "context": {"code": SNIPPETS[index % len(SNIPPETS)]},
        "parameters": {"max_tokens": 16, "temperature": 0.0},
    }


async def main(count: int, rounds: int) -> None:
    settings = default_model_settings(n_threads=os.cpu_count(), n_seq_max=count + 1)
    settings.rate_limits = settings.rate_limits.model_copy(update={"enabled": False})
    engine = Engine(settings)
    services = Services(engine, settings)
    key = ApiKeyStore.in_data_dir(services.store, settings.data_dir).create("bench").key
    app = create_app(engine, services, settings)
    await engine.worker_for(engine.default_model_id())
    batch_rates: list[float] = []
    single_rates: list[float] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://bench/v1/ai",
        headers={"X-API-Key": key},
        timeout=600,
    ) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            for index in range(count):
                response = await client.post("/inference/completion", json=request(index))
                response.raise_for_status()
            single_rates.append(count / (time.perf_counter() - started))
            items = [
                {"id": f"r{index}", "type": "completion", **request(index)}
                for index in range(count)
            ]
            started = time.perf_counter()
            response = await client.post(
                "/batch/inference",
                json={"requests": items, "options": {"max_concurrent": count}},
            )
            response.raise_for_status()
            assert response.json()["status"] == "completed", response.json()
            batch_rates.append(count / (time.perf_counter() - started))
    print(
        f"{count} requests: one by one {median(single_rates):.2f} req/s, "
        f"as one batch {median(batch_rates):.2f} req/s"
    )
    report("batch_vs_one_by_one", median(batch_rates) / median(single_rates), "> 1")
    await shutdown(engine, services)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
