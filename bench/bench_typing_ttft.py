"""Time to first token after typing one character vs a cold prompt of the same length.

The warm case extends the previous prompt by one character, so the worker
reuses the KV cache of everything before it; the cold case has the same
length but a different first line, so nothing can be reused. Prints the
median ratio. Target: <= 0.25.

    python bench/bench_typing_ttft.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SAMPLE_PYTHON, default_model_settings, median, report
from engine.completion.pipeline import CompletionRequest
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

# About 1,000 prompt tokens: the sample repeated under different names.
BODY = "".join(SAMPLE_PYTHON.replace("Circle", f"Circle{i}") for i in range(6))


async def first_token_ms(engine: Engine, code: str) -> float:
    result = await engine.complete(
        CompletionRequest(
            code=code,
            cursor=len(code),
            language="python",
            params=SamplingParams(max_tokens=1),
            priority=Priority.INTERACTIVE,
        )
    )
    return result.completion.generation.first_token_ms


async def main(rounds: int) -> None:
    engine = Engine(default_model_settings(n_threads=os.cpu_count(), n_seq_max=1))
    await engine.worker_for(engine.default_model_id())
    warm: list[float] = []
    cold: list[float] = []
    typed = "\ndef describe(shape):\n    return f'{shape"
    for index in range(rounds):
        head = f"# revision {index}\n"
        base = head + BODY + typed
        await first_token_ms(engine, base)  # the previous keystroke
        warm.append(await first_token_ms(engine, base + "."))
        other = f"# other    {index}\n" + BODY + typed + "."
        cold.append(await first_token_ms(engine, other))
    print(
        f"warm (one more character) median {median(warm):.1f} ms, cold median {median(cold):.1f} ms"
    )
    report("typing_ttft_ratio", median(warm) / median(cold), "<= 0.25")
    await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
