"""A fixed sample of HumanEval single-line holes: the engine passes at least as often as naive.

The naive client is what a plain editor plugin does: the text before the cursor
to llama-cpp-python, greedy, stopped at the first newline. Both run the embedded
default model, greedily, on the same holes; every candidate is executed against
the task's tests (``bench.quality.sandbox``). The sample mixes the two kinds of
single-line hole: an emptied line, and a removed line with the cursor at the
start of the next one (the editor's "insert a line here").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import islice

import pytest
import pytest_asyncio

from bench.quality.clients import EngineClient, NaiveClient, model_path_of
from bench.quality.holes import Hole, functional_holes
from bench.quality.sandbox import Limits, run_python
from engine.config import Settings
from engine.engine import Engine

pytestmark = [pytest.mark.default_model, pytest.mark.timeout(900)]

# 20 + 10 holes from a seeded shuffle of the tasks: fixed, so a change in the count is a
# change in the pipeline (or the model), never in the sample.
SAMPLE = (("line", 20), ("line_insert", 10))
MAX_TOKENS = 48  # a few lines: enough for a line and the block stop after it


@dataclass
class Tally:
    """One client's counts over the sample."""

    passed: int = 0
    empty: int = 0


@pytest_asyncio.fixture
async def default_engine(default_settings: Settings) -> AsyncIterator[Engine]:
    engine = Engine(default_settings)
    try:
        yield engine
    finally:
        await engine.close()


def sample() -> list[Hole]:
    """The first holes of each split, in the benchmark's seeded task order."""
    holes: list[Hole] = []
    for split, count in SAMPLE:
        holes += list(islice(functional_holes((split,), seed=0), count))
    return holes


async def test_engine_passes_at_least_as_often_as_the_naive_client(
    default_engine: Engine,
) -> None:
    model_id, path = await model_path_of(default_engine.settings, None)
    naive = NaiveClient(path, n_threads=2)
    engine = EngineClient(default_engine, model_id)
    tallies = {"naive": Tally(), "engine": Tally()}
    lost: list[str] = []  # holes the naive client passed and the engine failed
    emptied: list[str] = []  # ... with an empty answer: always a bug
    holes = sample()
    assert len(holes) == sum(count for _, count in SAMPLE)
    try:
        for hole in holes:
            outcome = {}
            for client in (naive, engine):
                answer = await client.complete(hole, MAX_TOKENS)
                passed = run_python(
                    hole.filled(answer.text, answer.replace_end) + hole.test, Limits()
                ).passed
                tally = tallies[client.name]
                tally.passed += passed
                tally.empty += not answer.text
                outcome[client.name] = (passed, answer.text)
            if outcome["naive"][0] and not outcome["engine"][0]:
                lost.append(f"{hole.sample_id}: {outcome['engine'][1]!r}")
                if not outcome["engine"][1]:
                    emptied.append(hole.sample_id)
    finally:
        naive.close()
    # The sample is not trivial: both clients pass some holes and fail others.
    assert 0 < tallies["naive"].passed < len(holes)
    assert tallies["engine"].passed >= tallies["naive"].passed, (tallies, lost)
    assert not emptied, lost
