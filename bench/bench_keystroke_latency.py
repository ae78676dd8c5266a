"""Keystroke latency while REST work runs vs idle (same model, one process).

A keystroke is an interactive completion (16 tokens) at a cursor that moves
one character each time. Two background loads, each running the whole time:
three long REST-priority generations, then three REST requests that read
long prompts (about 2,000 tokens each, never cached) for one token each, as
scripts sending whole files do. Prints the median latency of each and the
ratios against idle. Target: <= 1.5.

    python bench/bench_keystroke_latency.py [--keystrokes 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SAMPLE_PYTHON, default_model_settings, median, report
from engine.completion.pipeline import CompletionRequest
from engine.completion.prompts import TextPrompt
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

TYPED = "\n\ndef describe(shape):\n    return f'{shape"
# About 2,000 tokens of Python: the standard library's own source.
LONG_FILE = Path(argparse.__file__).read_text(encoding="utf-8")[:7000]


async def keystrokes(engine: Engine, count: int) -> list[float]:
    latencies = []
    for index in range(count):
        code = SAMPLE_PYTHON + TYPED + "x" * index
        started = time.perf_counter()
        await engine.complete(
            CompletionRequest(
                code=code,
                cursor=len(code),
                language="python",
                params=SamplingParams(max_tokens=16),
                priority=Priority.INTERACTIVE,
                document_key="file:///shapes.py",
            )
        )
        latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


async def main(count: int) -> None:
    engine = Engine(default_model_settings(n_threads=os.cpu_count()))
    model = engine.default_model_id()
    await engine.worker_for(model)
    await keystrokes(engine, 2)  # warm up
    idle = await keystrokes(engine, count)

    async def background(seed: int) -> None:
        while True:
            await engine.run(
                model,
                TextPrompt(f"# task {seed}\ndef process_{seed}(items):\n    "),
                SamplingParams(max_tokens=400, temperature=0.8, seed=seed, ignore_eos=True),
                priority=Priority.NORMAL,
            )

    async def reading(seed: int) -> None:
        for round_ in itertools.count():
            # A new first line each time: nothing of the prompt is cached.
            head = f"# request {seed}-{round_}\n"
            await engine.run(
                model,
                TextPrompt(head + LONG_FILE),
                SamplingParams(max_tokens=1),
                priority=Priority.NORMAL,
            )

    busy = await under_load(engine, count, [background(seed) for seed in range(3)])
    read = await under_load(engine, count, [reading(seed) for seed in range(3)])
    print(
        f"keystroke latency: idle median {median(idle):.0f} ms, "
        f"with 3 background generations {median(busy):.0f} ms, "
        f"with 3 background prompt reads {median(read):.0f} ms (worst {max(read):.0f} ms)"
    )
    report("keystroke_latency_busy_vs_idle", median(busy) / median(idle), "<= 1.5")
    report("keystroke_latency_reading_vs_idle", median(read) / median(idle), "<= 1.5")
    await engine.close()


async def under_load(
    engine: Engine, count: int, work: list[Coroutine[None, None, None]]
) -> list[float]:
    """Keystroke latencies while ``work`` runs."""
    load = [asyncio.create_task(w) for w in work]
    await asyncio.sleep(2.0)  # the background work is running
    try:
        return await keystrokes(engine, count)
    finally:
        for task in load:
            task.cancel()
        for task in load:
            with contextlib.suppress(BaseException):
                await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keystrokes", type=int, default=8)
    asyncio.run(main(parser.parse_args().keystrokes))
