"""Streamed tokens cross the runner's pipe together, without holding what matters.

Waking the server from a runner process costs tens of microseconds a
message, as much as a tiny model's decode step, so a runner sends the
tokens of a fast decode together, at most every
``inference.stream_interval_ms``. A request's first token and its end are
never held. Real llama.cpp in real runner processes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.completion.prompts import TextPrompt
from engine.engine import Engine
from engine.runtime.messages import DoneEvent, SamplingParams, TokenEvent
from tests.conftest import make_settings

PROMPT = TextPrompt("def f():\n")


def interval_engine(tmp_path: Path, tiny_models: dict[str, Path], interval_ms: float) -> Engine:
    return Engine(
        make_settings(tmp_path / "data", tiny_models, inference={"stream_interval_ms": interval_ms})
    )


async def stream(engine: Engine, tokens: int) -> tuple[list[str], DoneEvent]:
    deltas: list[str] = []
    async for event in engine.events(
        "tiny-starcoder", PROMPT, SamplingParams(max_tokens=tokens, ignore_eos=True)
    ):
        if isinstance(event, TokenEvent):
            deltas.append(event.text)
        else:
            assert isinstance(event, DoneEvent)
            return deltas, event
    raise AssertionError("the stream ended without its done event")


async def stream_once(
    tmp_path: Path, tiny_models: dict[str, Path], interval_ms: float, tokens: int
) -> tuple[list[str], DoneEvent]:
    """One streamed generation of ``tokens`` on an engine with that interval, then closed."""
    engine = interval_engine(tmp_path, tiny_models, interval_ms)
    try:
        deltas, done = await stream(engine, tokens)
    finally:
        await engine.close()
    assert done.result.completion_tokens == tokens
    assert "".join(deltas) == done.result.text
    return deltas, done


async def test_without_an_interval_no_token_waits(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    deltas, _ = await stream_once(tmp_path, tiny_models, 0, 400)
    # The runner still sends together what queued up during its last pipe
    # write (tens of microseconds), so a delta may hold a few tokens; but the
    # text keeps streaming all the way, where a 1 s interval sends it in two.
    assert len(deltas) >= 8


async def test_tokens_within_the_interval_cross_as_one_event(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    # 64 tiny-model tokens decode in tens of milliseconds, inside one interval.
    deltas, done = await stream_once(tmp_path, tiny_models, 1000, 64)
    # The first token goes at once; the rest waits and goes with the end. On
    # a machine too busy to decode them within the interval, one more event
    # for each interval the decode took (the worker's own measurement).
    intervals = int(done.result.decode_ms // 1000)
    assert 1 <= len(deltas) <= 2 + intervals, (len(deltas), done.result.decode_ms)


async def test_a_second_requests_first_token_is_not_held(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    engine = interval_engine(tmp_path, tiny_models, 1000)
    order: list[str] = []

    async def follow(name: str, tokens: int) -> None:
        first = True
        async for event in engine.events(
            "tiny-starcoder", PROMPT, SamplingParams(max_tokens=tokens, ignore_eos=True)
        ):
            if isinstance(event, TokenEvent) and first:
                order.append(f"{name} first token")
                first = False
            elif isinstance(event, DoneEvent):
                order.append(f"{name} done")

    try:
        await engine.load_model("tiny-starcoder")
        long = asyncio.create_task(follow("long", 1500))
        while not order:  # the long one streams; its later tokens are held now
            await asyncio.sleep(0.005)
        await follow("short", 4)
        await long
    finally:
        await engine.close()
    # The short request's first token and end crossed while the long one's
    # tokens were being held: both before the long request's end.
    assert order == ["long first token", "short first token", "short done", "long done"]
