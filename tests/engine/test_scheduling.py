"""The worker's scheduler: prompt sharing, reserved interactive slot, speculation, settings."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

import llama_cpp
import pytest

from engine import engine as engine_module
from engine.completion.prompts import TextPrompt
from engine.config import Settings, load_settings
from engine.engine import Engine
from engine.errors import ContextLengthExceededError, RequestCancelledError
from engine.refactor import RefactorRequest
from engine.runtime.llama_backend import ContextConfig, context_params, model_params
from engine.runtime.messages import GenerationResult, Priority, SamplingParams, TokenEvent
from tests.conftest import make_settings, tiny_specs
from tests.support.requests import at_end
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
        kv_cache=inference.kv_cache,
    )
    params = context_params(config)
    assert params.n_ctx == 4096  # explicit, never "from the model"
    assert params.n_ubatch >= 512
    assert params.n_batch >= params.n_ubatch
    assert params.flash_attn_type in (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    )
    # A KV stream per slot by default: a decode neither waits for nor is
    # changed by the prompts the other slots hold.
    assert inference.kv_cache == "per_slot"
    assert not params.kv_unified and params.swa_full
    assert params.n_outputs_max == inference.n_seq_max  # logits only where sampled
    # The catalog default (-1) offloads every layer when a GPU backend is present.
    assert model_params(-1, use_mmap=False).n_gpu_layers >= 2**31 - 1
    assert model_params(8, use_mmap=False).n_gpu_layers == 8
    assert settings.models[0].n_gpu_layers == -1


async def test_alternatives_share_the_prompt_cache(engine: Engine) -> None:
    code = LONG_PROMPT + "result = "
    result = await engine.complete(
        at_end(
            code,
            "tiny-codellama",
            max_tokens=6,
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


async def an_editor_types(engine: Engine) -> None:
    """One keystroke's completion on tiny-codellama: an editor is now typing."""
    await engine.run(
        "tiny-codellama",
        TextPrompt("t = "),
        SamplingParams(max_tokens=2),
        priority=Priority.INTERACTIVE,
    )


def start_batch(
    engine: Engine, name: str, count: int, params: SamplingParams
) -> list[asyncio.Task[GenerationResult]]:
    """``count`` batch-priority generations on tiny-codellama, started now."""
    return [
        asyncio.create_task(
            engine.run(
                "tiny-codellama", TextPrompt(f"{name}{i} = ["), params, priority=Priority.BATCH
            )
        )
        for i in range(count)
    ]


async def test_one_slot_stays_free_for_the_editor(engine: Engine) -> None:
    worker = await engine.worker_for("tiny-codellama")
    slots = worker.config.context.n_seq_max
    assert slots >= 2
    await an_editor_types(engine)  # the slot is kept for it from its first keystroke on
    # Long enough that the batch cannot finish while the keystroke is served
    # (the tiny model decodes 300 tokens on three slots in about 0.1 s).
    long_work = SamplingParams(max_tokens=1500)
    batch = start_batch(engine, "x", slots + 1, long_work)
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
    assert all(task.result().completion_tokens == long_work.max_tokens for task in batch)


async def test_the_queue_is_reported_per_priority_class(engine: Engine) -> None:
    # Counted in the runner process and pushed to this one, as /health and the
    # dashboard show it.
    worker = await engine.worker_for("tiny-codellama")
    slots = worker.config.context.n_seq_max
    await an_editor_types(engine)  # so one slot is kept free for it
    batch = start_batch(engine, "q", slots + 1, SamplingParams(max_tokens=400, ignore_eos=True))
    try:
        for _ in range(1000):  # until the runner has admitted what it can
            # Until every request has reached the runner, and it has admitted what it can.
            if worker.active_requests == slots - 1 and sum(worker.queued_by_priority) == 2:
                break
            await asyncio.sleep(0.005)
        # The reserved slot and one more wait: two batch requests queued, nothing else.
        assert worker.queued_by_priority == (0, 0, 0, 2, 0)
        assert engine.health().queued_by_priority == {
            "interactive": 0,
            "speculative": 0,
            "normal": 0,
            "batch": 2,
            "warm": 0,
        }
    finally:
        for task in batch:
            task.cancel()
        await asyncio.gather(*batch, return_exceptions=True)


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


async def test_a_keystroke_takes_the_slot_of_the_speculation_it_preempts(engine: Engine) -> None:
    # The guess runs in the slot that holds the document's prompt. The next
    # keystroke stops it and must get that slot, with its cache, even where
    # only a shift can reuse it (the window lost lines in the middle): a copy
    # from the still-running guess into another slot would keep only the
    # common prefix.
    head = "# geometry helpers\n"
    dropped = "".join(f"old_{i} = legacy({i})\n" for i in range(12))
    window = "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 30))
    events = engine.events(
        "tiny-deepseek",
        TextPrompt(head + dropped + window),
        SamplingParams(max_tokens=1200, ignore_eos=True),  # within the 2,048 cells
        priority=Priority.SPECULATIVE,
    )
    first = await anext(events)
    assert isinstance(first, TokenEvent)  # the guess is generating
    keystroke = await engine.run(
        "tiny-deepseek",
        TextPrompt(head + window + "x"),
        SamplingParams(max_tokens=2),
        priority=Priority.INTERACTIVE,
    )
    with pytest.raises(RequestCancelledError):
        async for _ in events:
            pass
    assert keystroke.cached_prompt_tokens >= keystroke.prompt_tokens - 3


async def test_speculative_suggestion_is_served_on_a_hit(engine: Engine) -> None:
    code = "def area(r):\n    return "
    request = at_end(
        code,
        "tiny-qwen",
        max_tokens=12,
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


async def test_speculation_reuses_the_prompt_it_follows(engine: Engine) -> None:
    # An editor's document, with a definition from another open file in its
    # context: the guess at the next suggestion must build the same prompt
    # (same snippets) up to the cursor, so that it reads only the accepted
    # text, in the same slot, instead of a whole prompt of its own.
    helper = "def area(radius):\n    return 3.14159 * radius * radius\n"
    # Longer than the prompt's window and the 32 KB a request without an open
    # document is parsed around, with a definition at the top in use at the cursor.
    filler = "".join(f"\n\ndef step_{i}(x):\n    return x + {i}\n" for i in range(1500))
    code = (
        "from geometry import area\n\n\ndef scale(value, factor):\n    return value * factor\n"
        + filler
        + "\n\ndef report(r):\n    total = scale(area(r), 2)\n    return "
    )
    engine.documents.open("file:///geometry.py", helper, 1, "python")
    engine.documents.open("file:///report.py", code, 1, "python")
    request = at_end(
        code,
        "tiny-qwen",
        max_tokens=8,
        file_path="file:///report.py",
        priority=Priority.INTERACTIVE,
        document_key="file:///report.py",
    )
    shown = await engine.complete(request)
    assert shown.context_snippets >= 1  # the other file's definition is in the prompt
    completion = shown.completion
    assert completion.text
    accepted = code[: completion.replace_start] + completion.text + code[completion.replace_end :]
    guess = engine.speculator.take(
        request.document_key or "", accepted, completion.replace_start + len(completion.text)
    )
    assert guess is not None
    guessed = await guess
    prompt = completion.generation.prompt_tokens
    assert guessed.context_snippets == shown.context_snippets
    # Everything before the cursor line's tokens came from the first prompt's cache.
    assert guessed.completion.generation.cached_prompt_tokens >= prompt - 2


async def test_speculative_suggestion_is_discarded_on_a_miss(engine: Engine) -> None:
    code = "def area(r):\n    return "
    request = at_end(
        code,
        "tiny-qwen",
        max_tokens=12,
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


async def test_per_slot_streams_share_a_prompt_and_bound_a_request(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """``kv_cache = "per_slot"``: a stream per slot, copied whole to share a prompt.

    The greedy answer is the shared cache's; the alternatives are served from
    the first reader's prompt (a cross-stream copy, then its tail dropped);
    and a request is bounded by one slot's cells, not the whole context.
    """
    code = LONG_PROMPT + "result = "
    request = at_end(
        code,
        "tiny-codellama",
        max_tokens=6,
        alternatives=2,
    )
    answers = {}
    for mode in ("shared", "per_slot"):
        # 4,096 cells: 1,024 a slot, room for the whole prompt in both modes.
        settings = load_settings(
            None,
            data_dir=tmp_path / mode,
            models=tiny_specs(tiny_models, context_length=4096),
            inference={"n_threads": 2, "n_seq_max": 4, "kv_cache": mode},
            preload=[],
        )
        engine = Engine(settings)
        try:
            result = await engine.complete(request)
            answers[mode] = result.completion.text
            if mode == "per_slot":
                for alternative in result.alternatives:
                    generation = alternative.generation
                    assert generation.cached_prompt_tokens == generation.prompt_tokens - 1
                worker = await engine.worker_for("tiny-codellama")
                assert worker.info is not None
                n_ctx_seq = worker.info.n_ctx  # what one request can use
                long = TextPrompt("x = 1\n" * n_ctx_seq)
                with pytest.raises(ContextLengthExceededError):
                    await engine.run(
                        "tiny-codellama",
                        long,
                        SamplingParams(max_tokens=4),
                        priority=Priority.NORMAL,
                    )
        finally:
            await engine.close()
    assert answers["per_slot"] == answers["shared"]


async def test_slow_refactorings_leave_the_shared_thread_pool_free(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Six model-backed refactorings that take their time: they ran on
    # asyncio's shared pool (cpu + 4 threads) and held all of it, so every
    # route handing work to a thread (/models, jobs) waited for them.
    release = threading.Event()
    threads: list[str] = []

    def slow_refactor(request: object, generator: object) -> object:
        threads.append(threading.current_thread().name)
        release.wait(30)
        raise RequestCancelledError("released")

    monkeypatch.setattr(engine_module, "refactor", slow_refactor)
    request = RefactorRequest("x = 1 + 2\n", "python", "extract_variable", 4, 9)
    tasks = [
        asyncio.create_task(engine.refactor(request, model_id="tiny-codellama")) for _ in range(6)
    ]
    try:
        for _ in range(3000):  # until all six run (30 s at most)
            if len(threads) == len(tasks):
                break
            await asyncio.sleep(0.01)
        assert len(threads) == len(tasks)
        # The shared pool still answers (on the old code this waited for the release).
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), timeout=10) == 42
        assert all(name.startswith("refactor") for name in threads)
    finally:
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
