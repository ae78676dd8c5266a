"""Share of prompt tokens served from the KV cache on a replayed typing trace.

The trace types a new function into a file, one character at a time, and
asks for an inline completion after every keystroke, as an editor does. The
worker reports for each request how many prompt tokens it reused from the
cache; prints the share over the whole trace. Target: >= 90%.

    python bench/bench_prompt_cache.py [--characters 160]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SAMPLE_PYTHON, default_model_settings, report
from engine.completion.pipeline import CompletionRequest
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

TYPED = '''

def largest_area(shapes):
    """The shape with the largest area."""
    best = None
    for shape in shapes:
        if best is None or shape.area() > best.area():
            best = shape
    return best
'''


async def main(characters: int) -> None:
    engine = Engine(default_model_settings(n_threads=os.cpu_count()))
    await engine.worker_for(engine.default_model_id())
    prompt_tokens = 0
    cached_tokens = 0
    requests = 0
    text = TYPED[:characters]
    for end in range(1, len(text) + 1):
        code = SAMPLE_PYTHON + text[:end]
        result = await engine.complete(
            CompletionRequest(
                code=code,
                cursor=len(code),
                language="python",
                params=SamplingParams(max_tokens=4),
                priority=Priority.INTERACTIVE,
                document_key="file:///shapes.py",
            )
        )
        if result.cached:
            continue  # served without inference (typed into the suggestion)
        generation = result.completion.generation
        prompt_tokens += generation.prompt_tokens
        cached_tokens += generation.cached_prompt_tokens
        requests += 1
    print(
        f"{requests} inferences over {len(text)} keystrokes: "
        f"{cached_tokens} of {prompt_tokens} prompt tokens from the cache"
    )
    report("prompt_tokens_from_cache", cached_tokens / prompt_tokens, ">= 0.90")
    await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--characters", type=int, default=160)
    asyncio.run(main(parser.parse_args().characters))
