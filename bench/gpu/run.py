"""One run that measures the engine against a minimal llama.cpp loop on the same card.

Measured on one model (a random-weight TinyLlama-1.1B shape, Q4_K_M, when a
GPU backend is present; a small shape on a CPU) in one process:

1. pp512: prompt tokens/s of a 512-token prompt (minimal loop).
2. Single-stream decode: a minimal low-level loop (C-side greedy sampling)
   vs the engine's worker (target >= 0.95x).
3. Aggregate throughput with 1, 2, 4, 8, 16 concurrent requests: the minimal
   loop decoding N sequences in one batch vs N concurrent requests through
   the REST API on a real HTTP server (target >= 0.9x at the same N). Both
   include reading the prompts.
4. FIM latency through the language server (``ai-ide lsp`` over stdio):
   inline completions at different cursors, p50 and p95.

Prints one JSON line per figure and a summary table; with ``--out DIR`` it
also writes ``DIR/gpu_bench.json``. It never skips a part silently: a part
that cannot run is reported with the reason.

    python bench/gpu/run.py [--shape tinyllama-1.1b|small] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import llama_cpp as L
import uvicorn
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.gpu.make_model import SHAPES, make_model
from engine.completion.prompts import TextPrompt
from engine.config import load_settings
from engine.engine import Engine
from engine.models.catalog import ModelSpec
from engine.runtime.messages import SamplingParams
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown
from services.keys import ApiKeyStore

PROMPT_TOKENS = 32
STEPS = 128
COUNTS = (1, 2, 4, 8, 16)
THREADS = os.cpu_count() or 4


def emit(results: dict[str, Any], name: str, value: Any, **extra: Any) -> None:
    """Record and print one figure."""
    results[name] = value
    print(json.dumps({"figure": name, "value": value, **extra}), flush=True)


def device_name() -> str:
    """The GPU's name from NVML, or the CPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return f"CPU ({platform.processor() or platform.machine()}, {THREADS} threads)"


class MinimalLoop:
    """The leanest llama.cpp decode loop: one batch, C-side greedy sampling."""

    def __init__(self, path: Path, n_seq: int, n_ctx: int) -> None:
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 2**31 - 1
        self.model = L.llama_model_load_from_file(str(path).encode(), mp)
        assert self.model, "model load failed"
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = 2048
        cp.n_ubatch = 512
        cp.n_seq_max = n_seq
        cp.n_threads = cp.n_threads_batch = THREADS
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_AUTO
        cp.kv_unified = True
        self.ctx = L.llama_init_from_model(self.model, cp)
        assert self.ctx, "context creation failed"
        self.batch = L.llama_batch_init(2048, 0, 1)
        self.memory = L.llama_get_memory(self.ctx)
        self.samplers = []
        for _ in range(n_seq):
            chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
            self.samplers.append(chain)

    def _fill(self, items: list[tuple[int, int, int, bool]]) -> None:
        batch = self.batch
        batch.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits

    def _decode(self) -> None:
        status = L.llama_decode(self.ctx, self.batch)
        assert status == 0, f"llama_decode failed: {status}"

    def prompt_tokens_per_second(self, n: int) -> float:
        """pp<n>: one prompt of ``n`` tokens read in one call."""
        L.llama_memory_clear(self.memory, True)
        self._fill([(100 + i % 1000, i, 0, i == n - 1) for i in range(n)])
        started = time.perf_counter()
        self._decode()
        L.llama_synchronize(self.ctx)
        return n / (time.perf_counter() - started)

    def tokens_per_second(self, n_seq: int) -> float:
        """Generated tokens/s for ``n_seq`` sequences decoded together, prompts included."""
        L.llama_memory_clear(self.memory, True)
        started = time.perf_counter()
        items = [
            (100 + (s * 7 + i) % 1000, i, s, i == PROMPT_TOKENS - 1)
            for s in range(n_seq)
            for i in range(PROMPT_TOKENS)
        ]
        self._fill(items)
        self._decode()
        rows = [(s + 1) * PROMPT_TOKENS - 1 for s in range(n_seq)]
        for step in range(STEPS):
            tokens = [
                L.llama_sampler_sample(self.samplers[s], self.ctx, rows[s]) for s in range(n_seq)
            ]
            self._fill([(tokens[s], PROMPT_TOKENS + step, s, True) for s in range(n_seq)])
            rows = list(range(n_seq))
            self._decode()
        L.llama_synchronize(self.ctx)
        return n_seq * STEPS / (time.perf_counter() - started)

    def close(self) -> None:
        for sampler in self.samplers:
            L.llama_sampler_free(sampler)
        L.llama_batch_free(self.batch)
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)


async def engine_single_stream(engine: Engine) -> float:
    """Decode tokens/s of one request through the engine's worker."""
    result = await engine.run(
        "bench",
        TextPrompt("w0 " * PROMPT_TOKENS),
        SamplingParams(max_tokens=STEPS, ignore_eos=True),
    )
    return (result.completion_tokens - 1) / (result.decode_ms / 1000.0)


async def rest_aggregate(base: str, key: str, n: int) -> float:
    """Generated tokens/s for ``n`` concurrent generation requests over HTTP."""
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=600) as client:

        async def one(index: int) -> int:
            response = await client.post(
                "/v1/ai/inference/generation",
                json={
                    "model_id": "bench",
                    "prompt": f"task {index}: " + "w1 " * (PROMPT_TOKENS - 4),
                    "parameters": {"max_tokens": STEPS, "temperature": 0.0},
                },
            )
            response.raise_for_status()
            return int(response.json()["generation"]["metadata"]["completion_tokens"])

        started = time.perf_counter()
        counts = await asyncio.gather(*(one(i) for i in range(n)))
        return sum(counts) / (time.perf_counter() - started)


async def lsp_latencies(config: Path, samples: int) -> list[float]:
    """Inline-completion round trips through ``ai-ide lsp`` (milliseconds)."""
    client = LanguageClient("gpu-bench", "1")
    await client.start_io(
        sys.executable, "-m", "lsp_server.cli", "lsp", "--no-http", "--config", str(config)
    )
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"model": "bench", "maxTokens": 32},
        )
    )
    client.initialized(types.InitializedParams())
    uri = "file:///bench/sample.py"
    text = "".join(f"def function_{i}(value):\n    return value * {i}\n\n" for i in range(40))
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.loadModel", arguments=["bench"])
    )
    latencies = []
    for index in range(samples + 2):
        line = (index * 3) % 120
        started = time.perf_counter()
        await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=4),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
        if index >= 2:  # the first ones warm up
            latencies.append((time.perf_counter() - started) * 1000.0)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def main(shape_name: str | None, out: Path | None, rounds: int) -> None:
    results: dict[str, Any] = {}
    gpu = bool(L.llama_supports_gpu_offload())
    shape = SHAPES[shape_name or ("tinyllama-1.1b" if gpu else "small")]
    emit(results, "device", device_name(), gpu_offload=gpu)
    emit(results, "shape", shape.name)
    work = Path(tempfile.mkdtemp(prefix="ai-ide-gpu-bench-"))
    started = time.perf_counter()
    model = make_model(work / "models", shape)
    emit(
        results,
        "model_file_mb",
        round(model.stat().st_size / 2**20, 1),
        prepared_seconds=round(time.perf_counter() - started, 1),
    )

    minimal = MinimalLoop(model, n_seq=max(COUNTS), n_ctx=8192)
    minimal.tokens_per_second(1)  # warm up
    emit(
        results,
        "pp512_tokens_per_s",
        round(statistics.median(minimal.prompt_tokens_per_second(512) for _ in range(rounds)), 1),
    )
    for n in COUNTS:
        value = statistics.median(minimal.tokens_per_second(n) for _ in range(rounds))
        emit(results, f"minimal_x{n}_tokens_per_s", round(value, 1))
    minimal.close()

    data_dir = work / "data"
    settings = load_settings(
        None,
        data_dir=data_dir,
        models=[
            # 1,024 cells for each slot (the default kv_cache "per_slot" shares
            # context_length out among them): room for every request here.
            ModelSpec(
                id="bench",
                name="bench",
                path=model,
                context_length=1024 * (max(COUNTS) + 1),
                fim="starcoder",
            )
        ],
        inference={"n_seq_max": max(COUNTS) + 1, "n_threads": THREADS, "n_batch": 2048},
        rate_limits={"enabled": False},
    )
    engine = Engine(settings)
    services = Services(engine, settings)
    await engine.worker_for("bench")
    await engine_single_stream(engine)  # warm up
    single = statistics.median([await engine_single_stream(engine) for _ in range(rounds)])
    emit(results, "engine_x1_decode_tokens_per_s", round(single, 1))
    key = ApiKeyStore.in_data_dir(services.store, data_dir).create("bench").key
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine, services, settings),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    for n in COUNTS:
        await rest_aggregate(base, key, n)  # warm up this batch size
        value = statistics.median([await rest_aggregate(base, key, n) for _ in range(rounds)])
        emit(results, f"rest_x{n}_tokens_per_s", round(value, 1))
    server.should_exit = True
    await serving
    await shutdown(engine, services)

    config = work / "lsp.toml"
    config.write_text(
        f'data_dir = "{work / "lsp-data"}"\n\n[inference]\nn_threads = {THREADS}\n\n'
        f'[[models]]\nid = "bench"\nname = "bench"\npath = "{model}"\n'
        'context_length = 8192\nfim = "starcoder"\n',
        encoding="utf-8",
    )
    try:
        latencies = await lsp_latencies(config, samples=20)
        emit(results, "lsp_fim_latency_p50_ms", round(percentile(latencies, 0.5), 1))
        emit(results, "lsp_fim_latency_p95_ms", round(percentile(latencies, 0.95), 1))
    except Exception as exc:  # reported, never silently skipped
        emit(results, "lsp_fim_latency", None, error=f"{type(exc).__name__}: {exc}")

    ratio_single = results["engine_x1_decode_tokens_per_s"] / results["minimal_x1_tokens_per_s"]
    print("\n| figure | minimal loop | engine / REST | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| decode x1 tok/s | {results['minimal_x1_tokens_per_s']} | "
        f"{results['engine_x1_decode_tokens_per_s']} | {ratio_single:.2f} | >= 0.95 |"
    )
    for n in COUNTS:
        mine, theirs = results[f"rest_x{n}_tokens_per_s"], results[f"minimal_x{n}_tokens_per_s"]
        print(f"| x{n} aggregate tok/s | {theirs} | {mine} | {mine / theirs:.2f} | >= 0.90 |")
    print(f"| pp512 tok/s | {results['pp512_tokens_per_s']} | | | |")
    if results.get("lsp_fim_latency_p50_ms") is not None:
        print(
            f"| LSP FIM latency p50 / p95 ms | | {results['lsp_fim_latency_p50_ms']} / "
            f"{results['lsp_fim_latency_p95_ms']} | | |"
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_bench.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", choices=sorted(SHAPES), help="default: by device")
    parser.add_argument("--out", type=Path, help="directory for gpu_bench.json")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.shape, args.out, args.rounds))
