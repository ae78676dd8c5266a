"""REST completion end to end vs a direct llama-cpp-python call (same prompt and model).

Both sides generate the same number of greedy tokens from the same prompt
tokens, alternating, in one process; prints the median time ratio.
Target: <= 1.10.

    python bench/bench_rest_overhead.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.common import SAMPLE_PYTHON, default_model_settings, median, plain_llama, report
from engine.completion.prompts import FimPrompt, FimTokens, build_fim_prompt, split_at_cursor
from engine.engine import Engine
from engine.runtime.llama_backend import LlamaModel
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown
from services.keys import ApiKeyStore

CODE = SAMPLE_PYTHON + "\n\ndef largest(shapes):\n    return"


async def main(rounds: int) -> None:
    settings = default_model_settings(n_threads=os.cpu_count())
    engine = Engine(settings)
    services = Services(engine, settings)
    app = create_app(engine, services, settings)
    api_key = ApiKeyStore.in_data_dir(services.store, settings.data_dir).create("bench").key
    model_id = engine.default_model_id()
    await engine.worker_for(model_id)
    path = engine._resolve_path(engine.catalog[model_id])
    threads = os.cpu_count() or 1
    direct = plain_llama(
        path,
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    vocab_model = LlamaModel(path)
    prefix, line, suffix = split_at_cursor(CODE, len(CODE))
    prompt_tokens = build_fim_prompt(
        FimPrompt(prefix=prefix, line_prefix=line, suffix=suffix, budget_tokens=1536),
        FimTokens(None, None, None),
        vocab_model.tokenize,
        bos=vocab_model.bos,
    ).tokens
    body = {
        "context": {"language": "python", "code": CODE},
        "parameters": {"max_tokens": 48, "temperature": 0.0},
    }
    rest_ms: list[float] = []
    direct_ms: list[float] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://bench",
        headers={"X-API-Key": api_key},
    ) as client:
        for index in range(rounds + 2):
            started = time.perf_counter()
            response = await client.post("/v1/ai/inference/completion", json=body, timeout=300)
            elapsed_rest = (time.perf_counter() - started) * 1000
            generated = response.json()["completion"]["metadata"]["completion_tokens"]
            started = time.perf_counter()
            direct.create_completion(prompt_tokens, max_tokens=generated, temperature=0.0)
            elapsed_direct = (time.perf_counter() - started) * 1000
            if index >= 2:  # the first rounds warm both caches
                rest_ms.append(elapsed_rest)
                direct_ms.append(elapsed_direct)
    print(f"prompt tokens: {len(prompt_tokens)}, generated tokens: {generated}")
    print(f"REST median {median(rest_ms):.1f} ms, direct median {median(direct_ms):.1f} ms")
    report("rest_vs_direct_ratio", median(rest_ms) / median(direct_ms), "<= 1.10")
    vocab_model.close()
    await shutdown(engine, services)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    asyncio.run(main(parser.parse_args().rounds))
