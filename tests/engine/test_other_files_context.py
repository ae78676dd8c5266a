"""Which models' prompts carry the editor's other files (``completion.other_files``).

Real llama.cpp on tiny models: one with FIM tokens (``tiny-starcoder``), one
without (``tiny-nofim``, like the default Gemma 3 270M, which copies what it
is shown). The count is the answer's own: the snippets its prompt carried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.engine import Engine
from engine.runtime.messages import Priority
from tests.conftest import make_settings
from tests.support.requests import at_end

MAIN = "file:///project/main.py"
HELPERS = "file:///project/helpers.py"
# Short enough that the prompt shows all of it: any snippet is another file's.
MAIN_CODE = "from helpers import Shape3\n\n\ndef build():\n    return Shape3("
HELPERS_CODE = "".join(
    f"class Shape{index}:\n    sides = {index}\n    name = 'shape {index}'\n\n"
    for index in range(6)
)


async def snippets_in_prompt(engine: Engine, model_id: str) -> int:
    engine.documents.open(HELPERS, HELPERS_CODE, 1, "python")
    engine.documents.open(MAIN, MAIN_CODE, 1, "python")
    result = await engine.complete(
        at_end(
            MAIN_CODE,
            model_id,
            max_tokens=2,
            file_path="/project/main.py",
            priority=Priority.INTERACTIVE,
            document_key=MAIN,
        )
    )
    return result.context_snippets


@pytest_asyncio.fixture(params=["on", "off"])
async def chosen(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_models: dict[str, Path]
) -> AsyncIterator[tuple[str, Engine]]:
    engine = Engine(make_settings(tmp_path, tiny_models, completion={"other_files": request.param}))
    try:
        yield request.param, engine
    finally:
        await engine.close()


async def test_by_default_only_models_with_fim_tokens_see_other_files(engine: Engine) -> None:
    assert await snippets_in_prompt(engine, "tiny-starcoder") >= 1  # Shape3's class, ...
    # The same document state for a model without FIM tokens: its own context
    # only (the memo of the first model's context is not reused for it).
    assert await snippets_in_prompt(engine, "tiny-nofim") == 0


async def test_the_setting_decides_for_every_model(chosen: tuple[str, Engine]) -> None:
    choice, engine = chosen
    for model_id in ("tiny-starcoder", "tiny-nofim"):
        count = await snippets_in_prompt(engine, model_id)
        assert (count >= 1) == (choice == "on"), (model_id, count)
