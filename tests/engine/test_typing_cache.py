"""Typing in a long file is served from the KV cache: the prompt window stays put.

Counters, not times: the worker reports for each inference how many prompt
tokens it reused (``cached_prompt_tokens``). A 2,000-line file is longer
than the prompt budget, so these runs exercise the anchored prefix window
and the context kept per cursor line. The bar is 95% (the benchmark's
target); a window that moves with the cursor line's length scores about 94%.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.completion.pipeline import CompletionRequest, CompletionResult
from engine.config import Settings, load_settings
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams
from tests.conftest import make_settings, tiny_specs
from tests.support.requests import at_end

TYPED = "total = area(width, height) + 1"[:20]


def long_file(lines: int = 2000) -> str:
    """Short Python functions, about ``lines`` lines."""
    parts = []
    for index in range(lines // 4):
        parts.append(f"def area_{index}(width, height):\n    return width * height + {index}\n\n")
    return "".join(parts)


class CachedShare:
    """Prompt tokens of the counted keystrokes, and how many of them came from the KV cache."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.cached_tokens = 0

    def add(self, result: CompletionResult) -> None:
        """Count a keystroke's inference (one answered without inference has no prompt)."""
        if result.cached:
            return
        generation = result.completion.generation
        self.prompt_tokens += generation.prompt_tokens
        self.cached_tokens += generation.cached_prompt_tokens

    def share(self) -> float:
        """The cached share; fails when no keystroke read a prompt."""
        assert self.prompt_tokens > 0, "every keystroke was answered without inference"
        return self.cached_tokens / self.prompt_tokens


async def typing_share(engine: Engine, model_id: str, code: str, cursor: int) -> float:
    """Type TYPED at ``cursor``, one character per request; share of cached prompt tokens.

    The first request of the run fills the cache and is not counted; requests
    answered without inference (typed into the suggestion) have no prompt.
    """
    counted = CachedShare()
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
        if typed:
            counted.add(result)
    return counted.share()


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


def window_settings(directory: Path) -> Settings:
    """The default model with small sliding-window caches (llama-server's layout)."""
    return load_settings(
        None, data_dir=directory, inference={"n_threads": 2, "swa_cache": "window"}
    )


@pytest_asyncio.fixture(params=["full", "window"])
async def gemma_typing(
    request: pytest.FixtureRequest, default_settings: Settings, tmp_path: Path
) -> AsyncIterator[Engine]:
    """The default model with either sliding-window cache (inference.swa_cache)."""
    full = request.param == "full"
    engine = Engine(default_settings if full else window_settings(tmp_path / "window"))
    try:
        yield engine
    finally:
        await engine.close()


@pytest.mark.default_model
@pytest.mark.parametrize("where", ["end", "middle"])
async def test_typing_with_the_default_model_is_served_from_the_cache(
    gemma_typing: Engine, where: str
) -> None:
    # With small sliding-window caches too: a keystroke changes the prompt
    # only near its end, inside the window plus the micro-batch they keep.
    code = long_file()
    model_id = gemma_typing.default_model_id()
    share = await typing_share(gemma_typing, model_id, code, cursor_positions(code)[where])
    assert share >= 0.95


async def new_line_shares(engine: Engine, model_id: str, code: str, lines: int) -> list[float]:
    """Type ``lines`` new lines at the end of ``code``; each request's cached share.

    Requests whose context snippets changed are left out: snippets come first
    in the prompt, so a changed snippet means reading the window again (that
    happens when the window moves past a definition the cursor uses).
    """
    shares: list[float] = []
    snippets = -1
    for index in range(lines):
        code += f"    total_{index} = width * height + {index}\n"
        result = await engine.complete(
            at_end(
                code,
                model_id,
                max_tokens=2,
                file_path="/project/areas.py",
                priority=Priority.INTERACTIVE,
                document_key="file:///project/areas.py",
            )
        )
        generation = result.completion.generation
        if index and not result.cached and result.context_snippets == snippets:
            shares.append(generation.cached_prompt_tokens / generation.prompt_tokens)
        snippets = result.context_snippets
    return shares


@pytest.mark.parametrize("model_id", ["tiny-starcoder", "tiny-nofim"])
async def test_a_window_that_moves_down_is_shifted_not_read_again(
    engine: Engine, settings: Settings, model_id: str
) -> None:
    # 80 new lines of about 12 tokens outgrow the prompt window several times:
    # each time it moves down a step, the lines that stay in it move left in
    # the KV cache instead of being decoded again.
    assert settings.inference.cache_reuse_tokens > 0
    shares = await new_line_shares(engine, model_id, long_file(), 80)
    assert len(shares) >= 60
    assert min(shares) >= 0.6, shares


async def test_without_cache_reuse_a_moved_window_is_read_again(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    # The control for the test above: the same typing with shifting off
    # re-reads the whole window whenever it moves.
    settings = make_settings(tmp_path / "data", tiny_models, inference={"cache_reuse_tokens": 0})
    engine = Engine(settings)
    try:
        shares = await new_line_shares(engine, "tiny-nofim", long_file(), 80)
    finally:
        await engine.close()
    assert min(shares) < 0.2, shares


@pytest.mark.default_model
async def test_a_moved_window_is_shifted_with_the_default_model(gemma: Engine) -> None:
    # Gemma 3 attends to a sliding window in most layers; its cache is kept
    # full size (swa_full), which is what lets llama.cpp shift it.
    shares = await new_line_shares(gemma, gemma.default_model_id(), long_file(), 80)
    assert len(shares) >= 60
    assert min(shares) >= 0.6, shares


@pytest_asyncio.fixture
async def gemma_window(tmp_path: Path) -> AsyncIterator[Engine]:
    engine = Engine(window_settings(tmp_path / "window"))
    try:
        yield engine
    finally:
        await engine.close()


async def raw_answer(engine: Engine, code: str) -> tuple[str, int, int]:
    """The model's text at the end of ``code``, its prompt and cached prompt tokens."""
    result = await engine.complete(
        at_end(code, engine.default_model_id(), max_tokens=8, file_path="/project/areas.py")
    )
    generation = result.completion.generation
    return result.completion.raw_text, generation.prompt_tokens, generation.cached_prompt_tokens


@pytest.mark.default_model
async def test_an_edit_behind_the_sliding_window_reads_the_prompt_again(
    gemma_window: Engine, tmp_path: Path
) -> None:
    # A file that fits the prompt whole (about 1,200 tokens, more than the
    # model's 512-token window plus a 512-token micro-batch): after the first
    # answer, the cells of its first ~180 positions are gone from the small
    # sliding-window cache. An edit a third of the way down leaves a common
    # prefix of ~400 tokens, whose last positions attend to some of those
    # cells, so the prompt is read again; an edit near the end keeps the
    # prefix. Both answers are the ones an engine that never saw the first
    # prompt gives.
    code = long_file(240)
    await raw_answer(gemma_window, code)
    top = code.replace("area_20(", "area_twenty(", 1)
    text, prompt_tokens, cached = await raw_answer(gemma_window, top)
    assert prompt_tokens > 1100 and cached == 0
    bottom = top + "def area_last(width, height):\n    return"
    near_end, _, kept = await raw_answer(gemma_window, bottom)
    assert kept > prompt_tokens - 16
    fresh = Engine(window_settings(tmp_path / "fresh"))
    try:
        # Bottom first: each prompt then starts from an empty cache.
        assert (await raw_answer(fresh, bottom))[0] == near_end
        assert (await raw_answer(fresh, top))[0] == text
    finally:
        await fresh.close()


async def switching_share(engine: Engine, model_id: str, files: dict[str, str]) -> float:
    """Type TYPED at the end of each file in turn, switching file on every keystroke."""
    counted = CachedShare()
    for typed in range(len(TYPED) + 1):
        for name, code in files.items():
            text = code + TYPED[:typed]
            result = await engine.complete(
                CompletionRequest(
                    code=text,
                    cursor=len(text),
                    language="python",
                    file_path=f"/project/{name}",
                    model_id=model_id,
                    params=SamplingParams(max_tokens=4),
                    priority=Priority.INTERACTIVE,
                    document_key=f"file:///project/{name}",
                )
            )
            if typed:  # the first visit of each file fills its slot
                counted.add(result)
    return counted.share()


@pytest.mark.parametrize("model_id", ["tiny-starcoder", "tiny-nofim"])
async def test_switching_between_two_long_files_keeps_both_cached(
    tmp_path: Path, tiny_models: dict[str, Path], model_id: str
) -> None:
    # Each file's prompt stays in a slot of its own while the other is typed
    # in: a switch back reads only the keystroke, not the other file's window.
    # The context holds both prompts and the speculative guesses beside them.
    settings = make_settings(tmp_path / "data", tiny_models)
    settings.models = tiny_specs(tiny_models, context_length=8192)
    files = {
        "areas.py": long_file(),
        "volumes.py": long_file().replace("area", "volume").replace("+", "*"),
    }
    engine = Engine(settings)
    try:
        share = await switching_share(engine, model_id, files)
    finally:
        await engine.close()
    # Measured: 0.999; 0.89 when a new file took the slot with the longest
    # (if tiny) common prefix, overwriting the other file's prompt.
    assert share >= 0.95, share


async def editor_typing_share(
    engine: Engine, model_id: str, files: dict[str, str], places: list[tuple[str, int, str]]
) -> float:
    """Type at ``places`` (file, offset, text) in turn, a character each, as an editor does.

    The files are open in the engine's documents (their chunks in the ring,
    their definitions in the context) and each keystroke is an edit there
    before its completion, as the language server sends them. The first
    keystroke at each place is not counted: it takes that region's chunk,
    which changes the other places' context once.
    """
    uris = {name: f"file:///project/{name}" for name in files}
    for name, code in files.items():
        engine.documents.open(uris[name], code, 1, "python")
    cursors = [offset for _, offset, _ in places]
    counted = CachedShare()
    for typed in range(max(len(text) for _, _, text in places)):
        for index, (name, _, text) in enumerate(places):
            if typed >= len(text):
                continue
            doc = engine.documents.get(uris[name])
            assert doc is not None
            at = cursors[index]
            engine.documents.edit(uris[name], at, at, text[typed], doc.version + 1)
            for other, (other_name, _, _) in enumerate(places):
                if other != index and other_name == name and cursors[other] >= at:
                    cursors[other] += 1
            cursors[index] += 1
            engine.context_changed()
            result = await engine.complete(
                CompletionRequest(
                    code=doc.text,
                    cursor=cursors[index],
                    language="python",
                    file_path=f"/project/{name}",
                    model_id=model_id,
                    params=SamplingParams(max_tokens=4),
                    priority=Priority.INTERACTIVE,
                    document_key=uris[name],
                )
            )
            if typed:
                counted.add(result)
    return counted.share()


@pytest.mark.parametrize("model_id", ["tiny-starcoder", "tiny-nofim"])
async def test_jumping_between_two_places_of_an_open_file_keeps_both_cached(
    tmp_path: Path, tiny_models: dict[str, Path], model_id: str
) -> None:
    # A new function typed in the middle (its header half-typed on every
    # keystroke) and a call to it at the end, a character at each in turn.
    # Each place's context shows the other region: a ring chunk (8-line
    # chunks, which fit these models' budget for snippets) and the
    # definition there. Were the chunk taken again, or the half-typed
    # definition offered, on every keystroke, each prompt would be read
    # again from its snippets on: 0.18 and 0.27 before the ring kept the
    # regions it holds and half-typed definitions were left out, 0.95-0.96
    # since (the header's completion adds it to the call's context once).
    settings = make_settings(tmp_path / "data", tiny_models, completion={"ring_chunk_lines": 8})
    code = long_file()
    middle = cursor_positions(code)["middle"]
    engine = Engine(settings)
    # What is measured is what the context holds still, not the warm-up after
    # 0.5 s of quiet, which a slow machine's keystroke gaps would set going.
    engine.warmer.delay_seconds = 3600.0
    try:
        share = await editor_typing_share(
            engine,
            model_id,
            {"areas.py": code},
            [
                ("areas.py", middle, "def clamp(value, low):"),
                ("areas.py", len(code), "total = clamp(width, 1)"),
            ],
        )
    finally:
        await engine.close()
    assert share >= 0.90, share
