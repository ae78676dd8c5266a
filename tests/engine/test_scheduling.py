"""The worker's scheduler: prompt sharing, reserved interactive slot, speculation, settings."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import llama_cpp
import pytest

from engine.completion.pipeline import CompletionRequest
from engine.completion.prompts import TextPrompt
from engine.config import Settings
from engine.engine import Engine
from engine.errors import RequestCancelledError
from engine.runtime.llama_backend import ContextConfig, context_params, model_params
from engine.runtime.messages import Priority, SamplingParams
from tests.conftest import make_settings
from tests.support.worker_watch import PeakActive

LONG_PROMPT = "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 40))


def test_context_settings_chosen_for_the_job(settings: Settings) -> None:
    inference = settings.inference
    config = ContextConfig(
        n_ctx=4096,
        n_batch=inference.n_batch,
        n_ubatch=inference.n_ubatch,
        n_seq_max=inference.n_seq_max,
        flash_attn=inference.flash_attn,
    )
    params = context_params(config)
    assert params.n_ctx == 4096  # explicit, never "from the model"
    assert params.n_ubatch >= 512
    assert params.n_batch >= params.n_ubatch
    assert params.flash_attn_type in (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    )
    assert params.kv_unified and params.swa_full
    assert params.n_outputs_max == inference.n_seq_max  # logits only where sampled
    # The catalog default (-1) offloads every layer when a GPU backend is present.
    assert model_params(-1, use_mmap=False).n_gpu_layers >= 2**31 - 1
    assert model_params(8, use_mmap=False).n_gpu_layers == 8
    assert settings.models[0].n_gpu_layers == -1


async def test_alternatives_share_the_prompt_cache(engine: Engine) -> None:
    code = LONG_PROMPT + "result = "
    result = await engine.complete(
        CompletionRequest(
            code=code,
            cursor=len(code),
            language="python",
            model_id="tiny-codellama",
            params=SamplingParams(max_tokens=6),
            alternatives=2,
        )
    )
    primary = result.completion.generation
    assert primary.prompt_tokens > 200
    assert primary.cached_prompt_tokens <= 1  # the first reader computes the prompt
    # The alternatives copied its KV cache instead of recomputing the prompt.
    alternatives = result.alternatives
    assert alternatives, "sampled alternatives should differ from the greedy answer"
    for alternative in alternatives:
        generation = alternative.generation
        assert generation.cached_prompt_tokens == generation.prompt_tokens - 1


async def test_one_slot_stays_free_for_the_editor(engine: Engine) -> None:
    worker = await engine.worker_for("tiny-codellama")
    slots = worker.config.context.n_seq_max
    assert slots >= 2
    batch = [
        asyncio.create_task(
            engine.run(
                "tiny-codellama",
                TextPrompt(f"x{i} = ["),
                SamplingParams(max_tokens=300),
                priority=Priority.BATCH,
            )
        )
        for i in range(slots + 1)
    ]
    async with PeakActive(worker) as watch:
        await asyncio.sleep(0.1)
    # Batch work alone never takes the last slot...
    assert watch.peak == slots - 1
    keystroke = await engine.run(
        "tiny-codellama",
        TextPrompt("y = "),
        SamplingParams(max_tokens=4),
        priority=Priority.INTERACTIVE,
    )
    assert keystroke.completion_tokens == 4
    # Batch work never took the reserved slot; the keystroke did not queue behind it:
    # it was done before any of the batch work was (an order, not a time).
    assert not any(task.done() for task in batch)
    await asyncio.gather(*batch)
    assert all(task.result().completion_tokens == 300 for task in batch)


async def test_a_keystroke_preempts_speculative_work(engine: Engine) -> None:
    await engine.worker_for("tiny-deepseek")
    speculative = asyncio.create_task(
        engine.run(
            "tiny-deepseek",
            TextPrompt("z = ["),
            SamplingParams(max_tokens=1500),
            priority=Priority.SPECULATIVE,
        )
    )
    await asyncio.sleep(0.05)
    await engine.run(
        "tiny-deepseek",
        TextPrompt("w = "),
        SamplingParams(max_tokens=2),
        priority=Priority.INTERACTIVE,
    )
    with pytest.raises(RequestCancelledError):
        await speculative


async def test_speculative_suggestion_is_served_on_a_hit(engine: Engine) -> None:
    code = "def area(r):\n    return "
    request = CompletionRequest(
        code=code,
        cursor=len(code),
        language="python",
        model_id="tiny-qwen",
        params=SamplingParams(max_tokens=12),
        priority=Priority.INTERACTIVE,
        document_key="file:///area.py",
    )
    shown = await engine.complete(request)
    text = shown.completion.text
    assert text
    # The user accepts the suggestion: the next request is at its end.
    accepted = code + text
    await asyncio.sleep(0.3)  # the speculation runs at the lowest priority meanwhile
    hit = await engine.complete(replace(request, code=accepted, cursor=len(accepted)))
    assert hit.cached is True
    assert engine.speculator.hits == 1
    # It is what the model says for that state, computed the ordinary way.
    fresh = await engine.complete(
        replace(request, code=accepted, cursor=len(accepted), document_key=None)
    )
    assert hit.completion.text == fresh.completion.text


async def test_speculative_suggestion_is_discarded_on_a_miss(engine: Engine) -> None:
    code = "def area(r):\n    return "
    request = CompletionRequest(
        code=code,
        cursor=len(code),
        language="python",
        model_id="tiny-qwen",
        params=SamplingParams(max_tokens=12),
        priority=Priority.INTERACTIVE,
        document_key="file:///other.py",
    )
    await engine.complete(request)
    elsewhere = "def volume(r):\n    return "
    result = await engine.complete(replace(request, code=elsewhere, cursor=len(elsewhere)))
    assert result.cached is False
    assert engine.speculator.misses == 1


async def test_two_slots_minimum_still_serves_with_one(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    # With a single sequence there is nothing to reserve: requests still run.
    engine = Engine(make_settings(tmp_path, tiny_models, inference={"n_seq_max": 1}))
    try:
        result = await engine.run(
            "tiny-qwen", TextPrompt("a = "), SamplingParams(max_tokens=3), priority=Priority.BATCH
        )
        assert result.completion_tokens == 3
    finally:
        await engine.close()
