"""Keystroke latency while a REST batch runs vs idle (same model, one process).

A keystroke is an interactive completion (16 tokens) at a cursor that moves
one character each time; the background load is three long REST-priority
generations running the whole time. Prints the median latency of each and
the ratio. Target: <= 1.5.

    python bench/bench_keystroke_latency.py [--keystrokes 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SAMPLE_PYTHON, default_model_settings, median, report
from engine.completion.pipeline import CompletionRequest
from engine.completion.prompts import TextPrompt
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

TYPED = "\n\ndef describe(shape):\n    return f'{shape"


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

    load = [asyncio.create_task(background(seed)) for seed in range(3)]
    await asyncio.sleep(2.0)  # the background generations are decoding
    busy = await keystrokes(engine, count)
    for task in load:
        task.cancel()
    for task in load:
        with contextlib.suppress(BaseException):
            await task
    print(
        f"keystroke latency: idle median {median(idle):.0f} ms, "
        f"with 3 background generations {median(busy):.0f} ms"
    )
    report("keystroke_latency_busy_vs_idle", median(busy) / median(idle), "<= 1.5")
    await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keystrokes", type=int, default=8)
    asyncio.run(main(parser.parse_args().keystrokes))
