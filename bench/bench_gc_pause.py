"""Garbage-collector pauses in a serving process: start-up heap frozen vs not.

Builds what ``ai-ide serve`` builds before it serves (settings, the engine
with its catalog, the services, the REST app), sends REST requests through
the app in process (``GET /v1/ai/health`` and ``GET /v1/ai/models`` over
httpx's ASGI transport; no model is loaded) and then times full (generation
2) collections, the pass the interpreter runs now and then on its own and
that stalls the event loop, every stream and keystroke of the process, while
it lasts. Alternating rounds in one process, so that noise hits both: the
start-up heap walked (the old behaviour; ``gc.unfreeze``), and frozen
(:func:`engine.heap.freeze_startup_heap`, as the entry points now do).

Prints each round's pauses and the ratio frozen / walked of the best median.
Target: a full pass far shorter frozen (<= 0.1).
Run: ``.venv/bin/python bench/bench_gc_pause.py [--requests 400] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from engine.config import load_settings
from engine.engine import Engine
from engine.heap import freeze_startup_heap
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown
from services.keys import INITIAL_KEY_FILE


async def churn(client: httpx.AsyncClient, requests: int, headers: dict[str, str]) -> None:
    for index in range(requests):
        path = "/v1/ai/models" if index % 2 else "/v1/ai/health"
        response = await client.get(path, headers=headers)
        response.raise_for_status()


def full_passes(rounds: int) -> list[float]:
    """Seconds of each of ``rounds`` full collections, as the interpreter runs them."""
    pauses = []
    for _ in range(rounds):
        started = time.perf_counter()
        gc.collect(2)
        pauses.append(time.perf_counter() - started)
    return pauses


async def run(requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as data:
        settings = load_settings(None, data_dir=data, rate_limits={"enabled": False})
        engine = Engine(settings)
        services = Services(engine, settings)
        app = create_app(engine, services, settings)
        # The first-start key file the services wrote.
        headers = {"X-API-Key": (Path(data) / INITIAL_KEY_FILE).read_text().strip()}
        gc.collect()
        print(f"tracked objects after start-up: {len(gc.get_objects()):,}")
        transport = httpx.ASGITransport(app=app)
        medians: dict[str, float] = {}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for turn in range(rounds):
                for name in ("walked", "frozen"):
                    if name == "frozen":
                        frozen = freeze_startup_heap()
                    else:
                        gc.unfreeze()
                    await churn(client, requests, headers)
                    pauses = full_passes(5)
                    median = statistics.median(pauses)
                    medians[name] = min(median, medians.get(name, median))
                    print(
                        f"round {turn + 1} {name:>6}: full pass median {median * 1e3:8.3f} ms,"
                        f" longest {max(pauses) * 1e3:8.3f} ms"
                    )
        print(f"frozen at start-up: {frozen:,} objects")
        print(
            f"full pass frozen / walked (best median of each): "
            f"{medians['frozen'] / medians['walked']:.2g}"
            f" ({medians['frozen'] * 1e3:.3f} vs {medians['walked'] * 1e3:.1f} ms)"
        )
        await shutdown(engine, services)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="between measurements")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.rounds))


if __name__ == "__main__":
    main()
