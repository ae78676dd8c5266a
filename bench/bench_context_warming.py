"""The keystroke after opening another file, with and without the context warm-up.

An editor completes at the end of a long file, opens a second file (its top
joins the ring of recent chunks, so the first file's context changes), waits
a moment, comes back and starts a new line. With the warm-up the engine read
the changed context during the pause; without it the keystroke reads it.
Rounds alternate the two, on fresh documents, in one process (default
model unless ``--model``); prints the new-line keystroke's latency and cached
prompt share per side, and the ratio warm / cold.

    python bench/bench_context_warming.py [--rounds 3] [--pause 2.0] [--lines 80]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_typing_peer import stdlib_python
from bench.common import default_model_settings
from engine.completion.pipeline import CompletionRequest, CompletionResult
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

MODULES = (
    "argparse",
    "json.decoder",
    "shutil",
    "textwrap",
    "inspect",
    "ast",
    "tempfile",
    "logging",
    "pathlib",
    "functools",
    "csv",
    "calendar",
)


async def keystroke(engine: Engine, uri: str, code: str) -> tuple[float, CompletionResult]:
    started = time.perf_counter()
    result = await engine.complete(
        CompletionRequest(
            code=code,
            cursor=len(code),
            language="python",
            file_path=uri.removeprefix("file://"),
            params=SamplingParams(max_tokens=8),
            priority=Priority.INTERACTIVE,
            document_key=uri,
        )
    )
    return (time.perf_counter() - started) * 1000.0, result


async def one_round(
    engine: Engine, index: int, warm: bool, pause: float, lines: int
) -> tuple[float, float]:
    """(latency ms, cached share) of the new-line keystroke after the other file opened."""
    main, other = f"file:///bench/{index}/main.py", f"file:///bench/{index}/other.py"
    # Other sources each round: a chunk the ring already holds changes nothing.
    first, second = MODULES[(2 * index) % len(MODULES)], MODULES[(2 * index + 1) % len(MODULES)]
    code = stdlib_python(lines, (first,)) + "\n\ndef clamp(value, low, high):\n    result = "
    engine.documents.open(main, code, 1, "python")
    _, before = await keystroke(engine, main, code)  # cold: reads the whole prompt
    engine.documents.open(other, stdlib_python(400, (second,)), 1, "python")
    if warm:
        engine.context_changed()
    await asyncio.sleep(pause)
    await engine.warmer.idle()
    while engine.health().active_requests or engine.health().queue_length:
        await asyncio.sleep(0.01)  # the speculative guess of the first keystroke
    typed = code + "max(low, value)\n    "
    engine.documents.edit(main, len(code), len(code), typed[len(code) :], 2)
    elapsed, result = await keystroke(engine, main, typed)
    generation = result.completion.generation
    share = generation.cached_prompt_tokens / max(1, generation.prompt_tokens)
    print(
        f"  round {index}: warm-up {'on ' if warm else 'off'} {elapsed:7.0f} ms  "
        f"cached {share:6.1%}  snippets {before.context_snippets} -> {result.context_snippets}",
        flush=True,
    )
    return elapsed, share


async def main(args: argparse.Namespace) -> None:
    settings = default_model_settings(n_threads=os.cpu_count())
    engine = Engine(settings)
    model_id = engine.default_model_id()
    await engine.worker_for(model_id)
    figures: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    try:
        for index in range(2 * args.rounds):
            warm = index % 2 == 0
            figures[warm].append(await one_round(engine, index, warm, args.pause, args.lines))
    finally:
        await engine.close()
    on = statistics.median(e for e, _ in figures[True])
    off = statistics.median(e for e, _ in figures[False])
    print(
        f"new-line keystroke after opening another file: warm-up {on:.0f} ms "
        f"(cached {statistics.median(s for _, s in figures[True]):.1%}), without "
        f"{off:.0f} ms (cached {statistics.median(s for _, s in figures[False]):.1%}); "
        f"ratio {on / off:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds in the other file")
    parser.add_argument(
        "--lines",
        type=int,
        default=40,
        help="lines of the first file (in a long one the prompt budget leaves no room"
        " for ring chunks, so nothing changes to warm)",
    )
    asyncio.run(main(parser.parse_args()))
