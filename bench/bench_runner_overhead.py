"""What the process boundary costs per token: a runner process against a runner thread.

Two engines over the same GGUF, one with ``inference.isolation = "process"``
(the default: the model in a child process, events over a pipe) and one with
``"thread"`` (the same runner protocol on a thread of this process), take
turns generating the same exact-length streamed completions. Prints the
median time per token of each and the difference. Target: at most 0.05 ms
per token added.

    python bench/bench_runner_overhead.py [--tokens 256] [--rounds 5] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report
from engine.completion.prompts import TextPrompt
from engine.config import load_settings
from engine.engine import Engine
from engine.runtime.messages import DoneEvent, SamplingParams, TokenEvent


def engine_for(model: Path | None, isolation: str) -> Engine:
    data = Path(tempfile.mkdtemp(prefix=f"ai-ide-runner-{isolation}-"))
    models = [] if model is None else [{"id": "bench", "name": "bench", "path": str(model)}]
    return Engine(
        load_settings(
            None,
            data_dir=data,
            models=models,
            include_default_model=model is None,
            inference={"n_threads": os.cpu_count(), "isolation": isolation},
        )
    )


async def ms_per_token(engine: Engine, model_id: str, tokens: int) -> float:
    params = SamplingParams(max_tokens=tokens, ignore_eos=True)
    started = time.perf_counter()
    produced = 0
    async for event in engine.events(model_id, TextPrompt("def main():\n    "), params):
        if isinstance(event, TokenEvent):
            produced += 1
        elif isinstance(event, DoneEvent):
            produced = event.result.completion_tokens
    return (time.perf_counter() - started) * 1000.0 / max(produced, 1)


async def main(tokens: int, rounds: int, model: Path | None) -> None:
    process, thread = engine_for(model, "process"), engine_for(model, "thread")
    model_id = process.default_model_id()
    await process.worker_for(model_id)
    await thread.worker_for(model_id)
    for engine in (process, thread):  # warm up both
        await ms_per_token(engine, model_id, 16)
    timings: dict[str, list[float]] = {"process": [], "thread": []}
    for _ in range(rounds):
        timings["process"].append(await ms_per_token(process, model_id, tokens))
        timings["thread"].append(await ms_per_token(thread, model_id, tokens))
    per_process = statistics.median(timings["process"])
    per_thread = statistics.median(timings["thread"])
    print(f"{tokens} streamed tokens x {rounds} rounds, model {model_id}")
    print(f"  process runner: {per_process:.3f} ms/token")
    print(f"  thread runner:  {per_thread:.3f} ms/token")
    report("process_boundary_ms_per_token", per_process - per_thread, "<= 0.05")
    await process.close()
    await thread.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, help="a GGUF file (default: embedded Gemma)")
    args = parser.parse_args()
    asyncio.run(main(args.tokens, args.rounds, args.model))
