"""The quality harness's parts that need no model: holes, the sandbox, the metrics."""

from __future__ import annotations

import pytest

from bench.quality.holes import FUNCTIONAL_SPLITS, functional_hole, functional_holes
from bench.quality.metrics import edit_similarity, exact_match, levenshtein
from bench.quality.replay import REPLAYED, changed, replay
from bench.quality.sandbox import Limits, run_python

PROBLEM = {
    "task_id": "Test/0",
    "prompt": 'def add(a, b):\n    """Add."""\n',
    "canonical_solution": "    # the sum\n    total = a + b\n    return total\n",
    "test": "def check(f):\n    assert f(1, 2) == 3\n",
    "entry_point": "add",
}


@pytest.mark.parametrize("split", FUNCTIONAL_SPLITS)
def test_holes_put_back_give_the_original(split: str) -> None:
    hole = functional_hole(PROBLEM, split)
    assert hole is not None
    original = PROBLEM["prompt"] + PROBLEM["canonical_solution"]
    assert hole.prefix + hole.expected + hole.suffix == original
    assert hole.filled(hole.expected) == original
    assert hole.expected.strip() and "# the sum" not in hole.expected  # comments are no holes
    assert run_python(hole.filled(hole.expected) + hole.test).passed
    assert not run_python(hole.filled("") + hole.test).passed


def test_split_shapes() -> None:
    line = functional_hole(PROBLEM, "line")
    insert = functional_hole(PROBLEM, "line_insert")
    span = functional_hole(PROBLEM, "span")
    assert line is not None and insert is not None and span is not None
    assert line.prefix.endswith("\n") and line.suffix.startswith("\n")  # an emptied line
    assert insert.expected.endswith("\n") and not insert.suffix.startswith("\n")
    assert "\n" not in span.expected
    # A line-at-a-time answer before the next line gets its line break.
    assert insert.filled(insert.expected.rstrip("\n")) == insert.filled(insert.expected)


def test_holes_are_reproducible_and_cover_humaneval() -> None:
    first = [h.sample_id for h in functional_holes(("line",), limit=10)]
    assert first == [h.sample_id for h in functional_holes(("line",), limit=10)]
    assert len(set(first)) == 10
    holes = list(functional_holes(("line",)))
    assert len(holes) == 164
    assert all(run_python(h.filled(h.expected) + h.test).passed for h in holes[:5])


def test_sandbox_limits() -> None:
    assert run_python("print('ok')").passed
    failed = run_python("raise SystemExit(3)")
    assert failed.status == "failed" and "exit 3" in failed.detail
    timeout = run_python("while True:\n    pass\n", Limits(wall_seconds=1.0, cpu_seconds=5))
    assert timeout.status == "timeout"
    assert not run_python("x = bytearray(4 << 30)", Limits(memory_bytes=512 << 20)).passed
    # The program runs in a fresh temporary directory, not in the repository.
    assert run_python(
        "import os, sys\nsys.exit(0 if os.listdir('.') == ['candidate.py'] else 1)"
    ).passed


def test_metrics() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert exact_match("  return x  \n", "  return x")
    assert not exact_match("return x", "  return x")
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abcd", "abce") == pytest.approx(0.75)
    assert edit_similarity("", "abc") == 0.0


def test_replay_runs_todays_postprocessing_on_recorded_generations() -> None:
    hole = functional_hole(PROBLEM, "line")
    assert hole is not None
    # The model wrote the line, then a line that loops; the run recorded nothing.
    raw = hole.expected + "\n" + "    return total\n" * 3
    sample = {
        **hole.to_json(),
        "answers": {
            "engine": {"text": "", "replace_end": None, "seconds": 1.0, "raw": raw},
            "naive": {"text": "    return a", "replace_end": None, "seconds": 1.0},
        },
    }
    holes, results = replay([sample, {**sample, "answers": {"naive": {}}}], "engine", Limits())
    assert [h.sample_id for h in holes] == [hole.sample_id]  # no raw text: not replayed
    (row,) = results
    assert row["engine"].passed is False and row["naive"].passed is False
    assert row[REPLAYED].answer.text == hole.expected
    assert row[REPLAYED].passed is True and row[REPLAYED].exact
    assert "replayed: " + repr(hole.expected) in changed(holes, results, "engine")
