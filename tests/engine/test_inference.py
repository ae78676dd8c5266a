"""Real llama.cpp inference on tiny generated models through the engine's worker."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import replace

import pytest

from engine.completion.pipeline import CompletionRequest, CompletionResult
from engine.completion.prompts import FimPrompt, TextPrompt
from engine.engine import Engine
from engine.errors import (
    ContextLengthExceededError,
    InferenceTimeoutError,
    InvalidRequestError,
    QueueFullError,
    RequestCancelledError,
)
from engine.runtime.messages import (
    DoneEvent,
    GenerationRequest,
    Priority,
    SamplingParams,
    ThreadSink,
    TokenEvent,
)
from services.composition import Services
from tests.conftest import make_settings
from tests.support.requests import at_end

PROMPT = "def add(a, b):\n    return"


async def test_greedy_generation_is_deterministic_and_measured(engine: Engine) -> None:
    params = SamplingParams(max_tokens=24)
    first = await engine.run("tiny-starcoder", TextPrompt(PROMPT), params)
    second = await engine.run("tiny-starcoder", TextPrompt(PROMPT), params)
    assert first.text and first.text == second.text
    assert first.completion_tokens == 24
    assert first.finish_reason == "length"
    assert 0.0 < first.confidence <= 1.0
    assert math.isclose(first.confidence, math.exp(first.mean_logprob))
    assert first.prompt_tokens > 0
    assert first.total_ms >= first.decode_ms > 0
    # The second identical prompt reuses the KV cache of the first.
    assert second.cached_prompt_tokens == second.prompt_tokens - 1


async def test_different_models_produce_different_text(engine: Engine) -> None:
    params = SamplingParams(max_tokens=16)
    a = await engine.run("tiny-starcoder", TextPrompt(PROMPT), params)
    b = await engine.run("tiny-starcoder-b", TextPrompt(PROMPT), params)
    assert a.text != b.text


async def test_sampling_parameters_change_the_output(engine: Engine) -> None:
    greedy = await engine.run("tiny-qwen", TextPrompt(PROMPT), SamplingParams(max_tokens=32))
    sampled = [
        await engine.run(
            "tiny-qwen",
            TextPrompt(PROMPT),
            SamplingParams(max_tokens=32, temperature=1.5, top_p=0.95, seed=seed),
        )
        for seed in (1, 2)
    ]
    assert {s.text for s in sampled} != {greedy.text}
    same_seed = await engine.run(
        "tiny-qwen", TextPrompt(PROMPT), SamplingParams(max_tokens=32, temperature=1.5, seed=1)
    )
    again = await engine.run(
        "tiny-qwen", TextPrompt(PROMPT), SamplingParams(max_tokens=32, temperature=1.5, seed=1)
    )
    assert same_seed.text == again.text
    penalized = await engine.run(
        "tiny-qwen",
        TextPrompt(PROMPT),
        SamplingParams(max_tokens=32, frequency_penalty=2.0, presence_penalty=2.0),
    )
    assert penalized.text != greedy.text


async def test_stop_sequences_cut_the_text_and_are_never_streamed(engine: Engine) -> None:
    full = await engine.run("tiny-starcoder", TextPrompt(PROMPT), SamplingParams(max_tokens=40))
    stop = full.text[10:13]
    assert stop.strip(), "the tiny model's output should have a usable stop string"
    streamed: list[str] = []
    result = None
    async for event in engine.events(
        "tiny-starcoder", TextPrompt(PROMPT), SamplingParams(max_tokens=40, stop=[stop])
    ):
        if isinstance(event, TokenEvent):
            streamed.append(event.text)
        else:
            result = event.result
    assert result is not None
    assert result.finish_reason == "stop"
    assert result.text == full.text[: full.text.index(stop)]
    assert "".join(streamed) == result.text


async def test_streaming_yields_deltas_that_add_up_to_the_result(engine: Engine) -> None:
    deltas: list[str] = []
    done: DoneEvent | None = None
    async for event in engine.events(
        "tiny-deepseek", TextPrompt(PROMPT), SamplingParams(max_tokens=30)
    ):
        if isinstance(event, TokenEvent):
            deltas.append(event.text)
        else:
            done = event
    assert done is not None
    # Tokens of a fast decode may cross from the runner together
    # (inference.stream_interval_ms; see test_runner_streaming).
    assert deltas
    assert "".join(deltas) == done.result.text


async def test_cancelling_the_consumer_stops_generation_early(engine: Engine) -> None:
    await engine.load_model("tiny-codellama")
    worker = await engine.worker_for("tiny-codellama")
    received: list[str] = []

    async def consume() -> None:
        async for event in engine.events(
            "tiny-codellama", TextPrompt(PROMPT), SamplingParams(max_tokens=1800)
        ):
            if isinstance(event, TokenEvent):
                received.append(event.text)

    task = asyncio.create_task(consume())
    while len(received) < 3:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled_at = time.monotonic()
    while worker.active_requests:
        await asyncio.sleep(0.001)
    # The slot is free again within a few decode steps, long before 3000 tokens.
    assert time.monotonic() - cancelled_at < 1.0
    result = await engine.run("tiny-codellama", TextPrompt(PROMPT), SamplingParams(max_tokens=4))
    assert result.completion_tokens == 4


async def test_worker_cancel_by_id_reports_request_cancelled(engine: Engine) -> None:
    worker = await engine.worker_for("tiny-starcoder")
    sink = ThreadSink()
    request = GenerationRequest(
        TextPrompt(PROMPT), SamplingParams(max_tokens=1800), sink, stream=True
    )
    worker.submit(request)
    first = await asyncio.to_thread(sink.events.get, True, 10)
    assert isinstance(first, TokenEvent)
    worker.cancel(request.request_id)
    while True:
        event = await asyncio.to_thread(sink.events.get, True, 10)
        if not isinstance(event, TokenEvent):
            break
    assert isinstance(event.error, RequestCancelledError)  # type: ignore[union-attr]


async def test_a_newer_request_for_the_same_document_supersedes_the_older(
    engine: Engine,
) -> None:
    await engine.worker_for("tiny-qwen")
    old = asyncio.create_task(
        engine.run("tiny-qwen", TextPrompt(PROMPT), SamplingParams(max_tokens=1800), group="doc")
    )
    await asyncio.sleep(0.05)
    new = await engine.run(
        "tiny-qwen", TextPrompt(PROMPT + " a"), SamplingParams(max_tokens=8), group="doc"
    )
    assert new.completion_tokens == 8
    with pytest.raises(RequestCancelledError):
        await old


async def test_concurrent_sequences_match_their_sequential_outputs(engine: Engine) -> None:
    prompts = [TextPrompt(f"def f{i}(x):\n    return x *") for i in range(4)]
    params = SamplingParams(max_tokens=20)
    alone = [await engine.run("tiny-starcoder-b", p, params) for p in prompts]
    engine.registry.worker("tiny-starcoder-b")
    together = await asyncio.gather(*(engine.run("tiny-starcoder-b", p, params) for p in prompts))
    assert [r.text for r in together] == [r.text for r in alone]


async def test_interactive_requests_are_admitted_before_batch_work(
    engine: Engine, settings: object
) -> None:
    worker = await engine.worker_for("tiny-nofim")
    slots = worker.config.context.n_seq_max
    order: list[str] = []

    async def run(name: str, priority: Priority, tokens: int) -> None:
        await engine.run(
            "tiny-nofim", TextPrompt(PROMPT), SamplingParams(max_tokens=tokens), priority=priority
        )
        order.append(name)

    # Fill every slot with long batch work, queue more batch work, then a keystroke.
    busy = [asyncio.create_task(run(f"busy{i}", Priority.BATCH, 400)) for i in range(slots)]
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(run(f"queued{i}", Priority.BATCH, 5)) for i in range(3)]
    await asyncio.sleep(0.01)
    interactive = asyncio.create_task(run("keystroke", Priority.INTERACTIVE, 5))
    await asyncio.gather(*busy, *queued, interactive)
    assert order.index("keystroke") < min(order.index(f"queued{i}") for i in range(3))


async def test_prompt_longer_than_the_context_is_refused(engine: Engine) -> None:
    long_prompt = TextPrompt("x = 1\n" * 2000)
    with pytest.raises(ContextLengthExceededError):
        await engine.run("tiny-starcoder", long_prompt, SamplingParams(max_tokens=8))
    # The worker keeps serving.
    ok = await engine.run("tiny-starcoder", TextPrompt(PROMPT), SamplingParams(max_tokens=2))
    assert ok.completion_tokens == 2


async def test_deadline_gives_inference_timeout(engine: Engine) -> None:
    with pytest.raises(InferenceTimeoutError):
        await engine.run(
            "tiny-starcoder",
            TextPrompt(PROMPT),
            SamplingParams(max_tokens=1500),
            timeout_seconds=0.05,
        )


async def test_full_queue_is_refused(tmp_path: object, tiny_models: dict[str, object]) -> None:
    settings = make_settings(
        tmp_path,  # type: ignore[arg-type]
        tiny_models,  # type: ignore[arg-type]
        inference={"max_queue": 1, "n_seq_max": 1},
    )
    engine = Engine(settings)
    try:
        await engine.worker_for("tiny-starcoder")
        running = asyncio.create_task(
            engine.run("tiny-starcoder", TextPrompt(PROMPT), SamplingParams(max_tokens=2000))
        )
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(
            engine.run("tiny-starcoder", TextPrompt(PROMPT), SamplingParams(max_tokens=2))
        )
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFullError):
            await engine.run("tiny-starcoder", TextPrompt(PROMPT), SamplingParams(max_tokens=2))
        running.cancel()
        assert (await queued).completion_tokens == 2
    finally:
        await engine.close()


async def test_completion_pipeline_end_to_end(engine: Engine, services: Services) -> None:
    code = "def area(r):\n    return 3.14 * r * r\n\ndef perimeter(r):\n    return "
    request = at_end(
        code,
        "tiny-starcoder",
        max_tokens=24,
    )
    result = await engine.complete(request)
    completion = result.completion
    assert completion.generation.used_fim
    assert completion.replace_start == len(code)
    assert completion.raw_text.startswith(completion.text.rstrip()[:5])
    assert 0 < completion.confidence <= 1
    # Alternatives are sampled with their own seeds and measured separately.
    with_alternatives = await engine.complete(replace(request, alternatives=2))
    for alternative in with_alternatives.alternatives:
        assert alternative.text != with_alternatives.completion.text
        assert alternative.seed is not None and alternative.temperature > 0
    # Metrics recorded both calls.
    assert services.metrics.metrics("tiny-starcoder").inference_count == 2


async def test_completion_cache_serves_repeats(engine: Engine) -> None:
    request = CompletionRequest(
        code="x = ",
        cursor=4,
        language="python",
        model_id="tiny-qwen",
        params=SamplingParams(max_tokens=8),
        use_cache=True,
    )
    first = await engine.complete(request)
    second = await engine.complete(request)
    assert not first.cached and second.cached
    assert second.completion.text == first.completion.text
    assert engine.completion_cache.stats().hit_rate == 0.5


async def test_cursor_validation(engine: Engine) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await engine.complete(CompletionRequest(code="abc", cursor=-1, model_id="tiny-qwen"))
    assert caught.value.field == "context.cursor_position"
    # Past the end is clamped, as the spec's batch example needs.
    result = await engine.complete(
        CompletionRequest(
            code="fn main() {",
            cursor=12,
            language="rust",
            model_id="tiny-qwen",
            params=SamplingParams(max_tokens=4),
        )
    )
    assert result.completion.replace_start == len("fn main() {")
    with pytest.raises(InvalidRequestError):
        await engine.complete(CompletionRequest(code="a\x00b", cursor=1, model_id="tiny-qwen"))


async def test_a_streamed_request_typed_into_its_suggestion_needs_no_inference(
    engine: Engine,
) -> None:
    code = "def area(r):\n    return 3.14 * r * r\n\ndef perimeter(r):\n    return "
    request = at_end(
        code,
        "tiny-starcoder",
        max_tokens=12,
        priority=Priority.INTERACTIVE,
        document_key="file:///project/circle.py",
    )
    first = [item async for item in engine.stream_complete(request)]
    result = first[-1]
    assert isinstance(result, CompletionResult) and not result.cached
    text = result.completion.text
    assert len(text) >= 2, "the tiny model suggested too little to type into"
    typed = code + text[0]
    again = [
        item
        async for item in engine.stream_complete(replace(request, code=typed, cursor=len(typed)))
    ]
    served = again[-1]
    assert isinstance(served, CompletionResult) and served.cached
    assert served.completion.text == text[1:]
    assert again[:-1] == [text[1:]]  # the rest, as one delta


async def test_an_answer_that_writes_the_prompts_scaffolding_is_asked_for_again_bare(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first attempt's text is replaced by what the default model wrote at the
    # head of a Go file (a snippet header where `import (` was due); the second
    # attempt is the tiny model's own answer to the prompt without snippets.
    code = "import os\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\ndef perimeter(r):\n    "
    request = at_end(
        code,
        "tiny-starcoder",
        max_tokens=8,
    )
    real_run = engine.run
    prompts: list[FimPrompt] = []

    async def run(model_id: str, prompt: FimPrompt, params: SamplingParams, **options: object):  # type: ignore[no-untyped-def]
        prompts.append(prompt)
        result = await real_run(model_id, prompt, params, **options)
        if len(prompts) == 1:
            return replace(result, text="\n# from this file:\ndef area(r):\n")
        return result

    monkeypatch.setattr(engine, "run", run)
    result = await engine.complete(request)
    assert len(prompts) == 2
    assert prompts[0].snippets and not prompts[1].snippets
    assert prompts[1] == replace(prompts[0], snippets=())
    assert result.context_snippets == 0  # what the answer's prompt had
    assert "from this file" not in result.completion.raw_text


def _scripted_first_attempt(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, pieces: list[str]
) -> tuple[list[FimPrompt], list[str]]:
    """The first generation's deltas are ``pieces`` (what a model wrote); later ones are real.

    Returns the prompts of every attempt and, once the scripted attempt was
    closed before its end (cancelled), ``["closed"]``.
    """
    real_events = engine.events
    prompts: list[FimPrompt] = []
    closed: list[str] = []

    async def events(model_id: str, prompt: FimPrompt, params: SamplingParams, **options: object):  # type: ignore[no-untyped-def]
        prompts.append(prompt)
        if len(prompts) > 1:
            async for event in real_events(model_id, prompt, params, **options):  # type: ignore[arg-type]
                yield event
            return
        finished = False
        try:
            for piece in pieces:
                yield TokenEvent("scripted", piece)
            # A real result (timings, counts) to carry the scripted text.
            async for event in real_events(model_id, prompt, params, stream=False):
                if isinstance(event, DoneEvent):
                    finished = True
                    yield replace(event, result=replace(event.result, text="".join(pieces)))
        finally:
            if not finished:
                closed.append("closed")

    monkeypatch.setattr(engine, "events", events)
    return prompts, closed


SCAFFOLDED = "import os\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\ndef perimeter(r):\n    "


async def test_a_stream_that_writes_the_prompts_scaffolding_is_asked_for_again_bare(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the default model wrote at the head of a Go file, in Python's form:
    # held back until its line ends, never sent; then the tiny model's own answer
    # to the prompt without snippets streams instead.
    pieces = ["\n", "# fr", "om this", " file:", "\n", "def area(r):"]
    prompts, closed = _scripted_first_attempt(engine, monkeypatch, pieces)
    request = at_end(SCAFFOLDED, "tiny-starcoder", max_tokens=8)
    items = [item async for item in engine.stream_complete(request)]
    assert len(prompts) == 2
    assert prompts[0].snippets and prompts[1] == replace(prompts[0], snippets=())
    assert closed == ["closed"]  # the first generation was stopped at the header
    deltas, result = items[:-1], items[-1]
    assert isinstance(result, CompletionResult) and result.context_snippets == 0
    assert "from this file" not in "".join(str(delta) for delta in deltas)
    assert "".join(str(delta) for delta in deltas) == result.completion.raw_text


async def test_a_streamed_comment_that_only_starts_like_a_header_streams_as_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = ["# fr", "om the docs", ": see", " below\n", "    return 1"]
    prompts, closed = _scripted_first_attempt(engine, monkeypatch, pieces)
    request = at_end(SCAFFOLDED, "tiny-starcoder", max_tokens=8)
    items = [item async for item in engine.stream_complete(request)]
    assert len(prompts) == 1 and prompts[0].snippets and not closed
    # Held until "# from the docs" could no longer be a header, then as generated.
    assert items[:-1] == ["# from the docs", ": see", " below\n", "    return 1"]
    result = items[-1]
    assert isinstance(result, CompletionResult)
    assert result.completion.raw_text == "".join(pieces)
