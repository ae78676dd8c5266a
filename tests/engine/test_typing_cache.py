"""Typing in a long file is served from the KV cache: the prompt window stays put.

Counters, not times: the worker reports for each inference how many prompt
tokens it reused (``cached_prompt_tokens``). A 2,000-line file is longer
than the prompt budget, so these runs exercise the anchored prefix window
and the context kept per cursor line. The bar is 95% (the benchmark's
target); a window that moves with the cursor line's length scores about 94%.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from engine.completion.pipeline import CompletionRequest
from engine.config import Settings
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

TYPED = "total = area(width, height) + 1"[:20]


def long_file(lines: int = 2000) -> str:
    """Short Python functions, about ``lines`` lines."""
    parts = []
    for index in range(lines // 4):
        parts.append(f"def area_{index}(width, height):\n    return width * height + {index}\n\n")
    return "".join(parts)


async def typing_share(engine: Engine, model_id: str, code: str, cursor: int) -> float:
    """Type TYPED at ``cursor``, one character per request; share of cached prompt tokens.

    The first request of the run fills the cache and is not counted; requests
    answered without inference (typed into the suggestion) have no prompt.
    """
    prompt_tokens = cached_tokens = 0
    for typed in range(len(TYPED) + 1):
        text = code[:cursor] + TYPED[:typed] + code[cursor:]
        result = await engine.complete(
            CompletionRequest(
                code=text,
                cursor=cursor + typed,
                language="python",
                file_path="/project/areas.py",
                model_id=model_id,
                params=SamplingParams(max_tokens=4),
                priority=Priority.INTERACTIVE,
                document_key="file:///project/areas.py",
            )
        )
        if typed == 0 or result.cached:
            continue
        generation = result.completion.generation
        prompt_tokens += generation.prompt_tokens
        cached_tokens += generation.cached_prompt_tokens
    assert prompt_tokens > 0, "every keystroke was answered without inference"
    return cached_tokens / prompt_tokens


def cursor_positions(code: str) -> dict[str, int]:
    """The end of the file, and the start of a blank line in its middle."""
    middle = code.index("\n\n", len(code) // 2) + 1
    return {"end": len(code), "middle": middle}


@pytest.mark.parametrize("model_id", ["tiny-starcoder", "tiny-nofim"])
@pytest.mark.parametrize("where", ["end", "middle"])
async def test_typing_in_a_long_file_is_served_from_the_cache(
    engine: Engine, model_id: str, where: str
) -> None:
    code = long_file()
    share = await typing_share(engine, model_id, code, cursor_positions(code)[where])
    assert share >= 0.95


@pytest_asyncio.fixture
async def gemma(default_settings: Settings) -> AsyncIterator[Engine]:
    engine = Engine(default_settings)
    try:
        yield engine
    finally:
        await engine.close()


@pytest.mark.default_model
@pytest.mark.parametrize("where", ["end", "middle"])
async def test_typing_with_the_default_model_is_served_from_the_cache(
    gemma: Engine, where: str
) -> None:
    code = long_file()
    model_id = gemma.default_model_id()
    share = await typing_share(gemma, model_id, code, cursor_positions(code)[where])
    assert share >= 0.95
