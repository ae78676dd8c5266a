"""A context changed by another file is read into the KV cache before the next keystroke.

Real llama.cpp on a tiny model; counters, not times: the warm-up's own
counts, the snippets in the next keystroke's prompt and the prompt tokens it
found in the cache.
"""

from __future__ import annotations

from engine.completion.pipeline import CompletionResult
from engine.engine import Engine
from engine.runtime.messages import Priority
from tests.support.requests import at_end

MAIN = "file:///project/main.py"
HELPERS = "file:///project/helpers.py"
MAIN_CODE = (
    "".join(
        f"def area_{index}(width, height):\n    return width * height + {index}\n\n"
        for index in range(20)
    )
    + "def total(shapes):\n    result = "
)
HELPERS_CODE = "".join(
    f"class Shape{index}:\n    sides = {index}\n    name = 'shape {index}'\n\n"
    for index in range(12)
)


async def keystroke(engine: Engine, code: str) -> CompletionResult:
    return await engine.complete(
        at_end(
            code,
            "tiny-starcoder",
            max_tokens=2,
            file_path="/project/main.py",
            priority=Priority.INTERACTIVE,
            document_key=MAIN,
        )
    )


async def test_opening_another_file_warms_the_context_of_the_last_place(engine: Engine) -> None:
    engine.warmer.delay_seconds = 0.0
    engine.documents.open(MAIN, MAIN_CODE, 1, "python")
    first = await keystroke(engine, MAIN_CODE)
    engine.context_changed()  # nothing changed: nothing scheduled
    assert engine.warmer.counts.scheduled == 0

    # The editor opens another file: its top becomes a ring chunk, which the
    # place's next prompt will carry.
    engine.documents.open(HELPERS, HELPERS_CODE, 1, "python")
    engine.context_changed()
    await engine.warmer.idle()
    assert engine.warmer.counts.scheduled == 1 and engine.warmer.counts.done == 1

    # The next keystroke at that place: the new chunk is in its prompt, and
    # the prompt was already read.
    typed = MAIN_CODE + "a"
    engine.documents.edit(MAIN, len(MAIN_CODE), len(MAIN_CODE), "a", 2)
    after = await keystroke(engine, typed)
    assert after.context_snippets > first.context_snippets
    generation = after.completion.generation
    assert not after.cached and generation.prompt_tokens > 0
    assert generation.cached_prompt_tokens >= 0.9 * generation.prompt_tokens


async def test_no_warm_up_once_the_place_was_typed_at(engine: Engine) -> None:
    engine.warmer.delay_seconds = 0.0
    engine.documents.open(MAIN, MAIN_CODE, 1, "python")
    await keystroke(engine, MAIN_CODE)
    engine.documents.open(HELPERS, HELPERS_CODE, 1, "python")
    # The user typed at the place before the warm-up ran: that keystroke
    # takes the context itself, so the warm-up reads nothing.
    engine.documents.edit(MAIN, len(MAIN_CODE), len(MAIN_CODE), "a", 2)
    engine.context_changed()
    await engine.warmer.idle()
    assert engine.warmer.counts.done == 0 and engine.warmer.counts.skipped == 1


async def test_an_edit_above_the_place_in_its_own_file_warms_the_place(engine: Engine) -> None:
    engine.warmer.delay_seconds = 0.0
    engine.documents.open(MAIN, MAIN_CODE, 1, "python")
    await keystroke(engine, MAIN_CODE)
    # Imports pasted at the top: the ring's chunk of the file's top no longer
    # reads like it and is taken again, so the place's context at the end
    # changes, and the place itself moved down by the paste.
    pasted = "".join(f"import module_{index}\n" for index in range(8))
    engine.documents.edit(MAIN, 0, 0, pasted, 2)
    engine.context_changed()
    await engine.warmer.idle()
    assert engine.warmer.counts.done == 1

    after = await keystroke(engine, pasted + MAIN_CODE + "a")
    generation = after.completion.generation
    assert not after.cached and generation.prompt_tokens > 0
    assert generation.cached_prompt_tokens >= 0.9 * generation.prompt_tokens
