"""Python cost per generated token at 64 and 1,024 tokens (single stream).

Wall time of a generation is split into: time inside ``llama_decode``; time
in llama.cpp's sampler chain (C, called through ctypes); time computing the
token's log-probability (numpy, for ``confidence``); and the rest, which is
the Python loop itself (batch filling, detokenization, stop checks, event
delivery). llama-cpp-python's ``create_completion`` re-detokenizes its whole
output every token, so its cost grows with length; this loop's stays flat.

Sampler and log-probability costs grow with the vocabulary (262,144 tokens
for the default Gemma model, 32,000 for Llama-family code models), so both
the default model and a tiny generated model (1,451 tokens) are measured.

    python bench/bench_python_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import default_model_settings, median, report
from engine.completion.prompts import TextPrompt
from engine.engine import Engine
from engine.models.catalog import ModelSpec
from engine.runtime import llama_backend
from engine.runtime.messages import SamplingParams


class Clock:
    """Accumulates the time spent in one method of a class."""

    def __init__(self, owner: Any, name: str) -> None:
        self.seconds = 0.0
        original = getattr(owner, name)
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - started

        setattr(owner, name, timed)


CLOCKS = {
    "decode": Clock(llama_backend.LlamaContext, "decode"),
    "sampler": Clock(llama_backend.Sampler, "sample"),
    "logprob": Clock(llama_backend.LogprobMeter, "__call__"),
}


async def costs(
    engine: Engine, model: str, tokens: int, temperature: float = 0.8
) -> dict[str, float]:
    """Milliseconds per generated token: loop (Python), sampler, logprob, decode.

    Temperature 0 is the greedy pick completions use (a numpy argmax); above
    it, llama.cpp's sampler chain.
    """
    for clock in CLOCKS.values():
        clock.seconds = 0.0
    started = time.perf_counter()
    result = await engine.run(
        model,
        TextPrompt("import os\n\n\ndef walk(root):\n    for"),
        SamplingParams(max_tokens=tokens, temperature=temperature, seed=1, ignore_eos=True),
    )
    wall = time.perf_counter() - started
    assert result.completion_tokens == tokens, result.finish_reason
    spent = {name: clock.seconds * 1000.0 / tokens for name, clock in CLOCKS.items()}
    spent["python"] = wall * 1000.0 / tokens - sum(spent.values())
    return spent


async def measure(label: str, engine: Engine, model: str, rounds: int) -> None:
    await engine.worker_for(model)
    await costs(engine, model, 16)  # warm up
    for tokens, temperature in ((64, 0.8), (1024, 0.8), (64, 0.0)):
        runs = [await costs(engine, model, tokens, temperature) for _ in range(rounds)]
        figures = {name: median([run[name] for run in runs]) for name in runs[0]}
        pick = "greedy" if temperature == 0.0 else f"temperature {temperature:g}"
        print(
            f"{label}, {tokens} tokens, {pick}, ms/token: python loop {figures['python']:.3f}, "
            f"sampler {figures['sampler']:.3f}, logprob {figures['logprob']:.3f}, "
            f"decode {figures['decode']:.3f}",
            flush=True,
        )
        if temperature:
            report(f"{label}_python_ms_per_token_{tokens}", figures["python"], "<= 0.2, flat")


async def main(rounds: int) -> None:
    import tempfile

    from tests.support.tiny_models import write_tiny_model

    engine = Engine(default_model_settings(n_threads=os.cpu_count(), isolation="thread"))
    await measure("default_model", engine, engine.default_model_id(), rounds)
    await engine.close()
    tiny = write_tiny_model(Path(tempfile.mkdtemp()) / "tiny.gguf", fim=None, seed=3)
    settings = default_model_settings(n_threads=os.cpu_count(), isolation="thread")
    # 8,192 cells: 2,048 for each of the 4 slots, room for a 1,024-token generation.
    settings.models = [ModelSpec(id="tiny", name="tiny", path=tiny, context_length=8192)]
    engine = Engine(settings)
    await measure("tiny_model", engine, "tiny", rounds)
    await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
