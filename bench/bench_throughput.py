"""Aggregate throughput of 4 concurrent completions vs the same 4 one after another.

Continuous batching decodes the four sequences in one llama_decode per step;
sequentially each waits for the previous. Same requests, same model (the
embedded default), both in one process. Prints tokens/s and the ratio.

    python bench/bench_throughput.py [--tokens 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import default_model_settings, median, report
from engine.completion.prompts import TextPrompt
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

PROMPTS = [
    "def parse_config(path):\n    ",
    "class LRUCache:\n    def __init__(self, capacity):\n        ",
    "fn main() {\n    let numbers = vec![1, 2, 3];\n    ",
    "function debounce(fn, ms) {\n  ",
]


async def tokens_per_second(engine: Engine, model: str, tokens: int, concurrent: bool) -> float:
    params = SamplingParams(max_tokens=tokens)
    started = time.perf_counter()
    if concurrent:
        results = await asyncio.gather(
            *(engine.run(model, TextPrompt(p), params, priority=Priority.NORMAL) for p in PROMPTS)
        )
    else:
        results = [await engine.run(model, TextPrompt(p), params) for p in PROMPTS]
    elapsed = time.perf_counter() - started
    return sum(r.completion_tokens for r in results) / elapsed


async def main(tokens: int, rounds: int) -> None:
    engine = Engine(default_model_settings(n_threads=os.cpu_count(), n_seq_max=5))
    model = engine.default_model_id()
    await engine.worker_for(model)
    await tokens_per_second(engine, model, 8, True)  # warm up
    together: list[float] = []
    alone: list[float] = []
    for _ in range(rounds):
        alone.append(await tokens_per_second(engine, model, tokens, False))
        together.append(await tokens_per_second(engine, model, tokens, True))
    print(f"sequential {median(alone):.1f} tok/s, 4 concurrent {median(together):.1f} tok/s")
    report("concurrent4_vs_sequential", median(together) / median(alone), "> 1 (batching)")
    await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.tokens, args.rounds))
