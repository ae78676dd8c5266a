"""Syntax engine benchmark: incremental re-parse vs full parse, and completion-context time.

For a generated 5,000-line file per language, in one process:

* full parse: a fresh parse of the whole file (no old tree);
* incremental: ``SyntaxDocument.apply_edit`` of one character in the middle of the
  file (tree.edit + re-parse with the old tree + text/bytes bookkeeping), alternating
  an insertion and its removal, as while typing; "first" is the first edit after a
  full parse (a just-opened document), which reuses less of the tree;
* completion context: ``completion_context`` at random cursors inside function
  bodies, with one other open document; "warm" reuses the per-version caches,
  "after edit" measures the first call after an edit (caches rebuilt).

Targets: incremental/full <= 0.1; completion context well under 5 ms at the median.
Run: ``.venv/bin/python bench/bench_syntax.py``
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.syntax import ParserPool, SyntaxDocument

LINES = 5000
FULL_RUNS = 30
EDIT_RUNS = 400
CONTEXT_RUNS = 300


def python_file(lines: int) -> str:
    out = ["import os", "import sys", "from typing import Any", ""]
    index = 0
    while len(out) < lines:
        out += [
            "",
            f"def compute_{index}(values: list[int], scale: int) -> int:",
            f'    """Sum of scaled values, variant {index}."""',
            "    total = 0",
            "    for value in values:",
            "        if value > scale:",
            f"            total += value * scale + {index}",
            "        else:",
            f"            total -= helper_{max(index - 1, 0)}(value)",
            "    return total",
        ]
        index += 1
    return "\n".join(out[:lines]) + "\n"


def rust_file(lines: int) -> str:
    out = ["use std::collections::HashMap;", "use std::fmt;", ""]
    index = 0
    while len(out) < lines:
        out += [
            "",
            f"pub fn compute_{index}(values: &[i64], scale: i64) -> i64 {{",
            "    let mut total = 0;",
            "    for value in values.iter() {",
            "        if *value > scale {",
            f"            total += value * scale + {index};",
            "        } else {",
            f"            total -= helper_{max(index - 1, 0)}(*value);",
            "        }",
            "    }",
            "    total",
            "}",
        ]
        index += 1
    return "\n".join(out[:lines]) + "\n"


def typescript_file(lines: int) -> str:
    out = ['import { helper } from "./helper";', 'import * as fs from "fs";', ""]
    index = 0
    while len(out) < lines:
        out += [
            "",
            f"export function compute{index}(values: number[], scale: number): number {{",
            "  let total = 0;",
            "  for (const value of values) {",
            "    if (value > scale) {",
            f"      total += value * scale + {index};",
            "    } else {",
            "      total -= helper(value);",
            "    }",
            "  }",
            "  return total;",
            "}",
        ]
        index += 1
    return "\n".join(out[:lines]) + "\n"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench(language: str, text: str) -> dict[str, float]:
    pool = ParserPool()
    data = text.encode("utf-8")
    pool.parse(language, data)  # load the grammar and warm the parser

    full = [timed(lambda: pool.parse(language, data)) for _ in range(FULL_RUNS)]

    document = SyntaxDocument(text, language, pool=pool)
    middle = document.text.index("total", len(document.text) // 2) + 2
    character = "ö" if not text.isascii() else "x"
    incremental: list[float] = []
    for run in range(EDIT_RUNS):
        if run % 2 == 0:
            incremental.append(timed(lambda: document.apply_edit(middle, middle, character)))
        else:
            incremental.append(timed(lambda: document.apply_edit(middle, middle + 1, "")))
    assert document.text == text

    # The first edit after a full parse reuses less of the tree than edits made
    # while typing (each re-parse leaves a tree that the next one reuses better).
    first_edit: list[float] = []
    for _ in range(FULL_RUNS):
        fresh = SyntaxDocument(text, language, pool=pool)
        first_edit.append(timed(lambda d=fresh: d.apply_edit(middle, middle, character)))

    helper = SyntaxDocument(python_file(200) if language == "python" else text[:4000], language)
    rng = random.Random(7)
    bodies = [i for i in range(len(text)) if text.startswith("total", i)]
    cursors = [rng.choice(bodies) + 3 for _ in range(CONTEXT_RUNS)]
    document.completion_context(cursors[0], [helper])
    warm = [timed(lambda c=c: document.completion_context(c, [helper])) for c in cursors]

    after_edit: list[float] = []
    for count, cursor in enumerate(cursors[:100]):
        if count % 2 == 0:
            document.apply_edit(middle, middle, character)
        else:
            document.apply_edit(middle, middle + 1, "")
        after_edit.append(timed(lambda c=cursor: document.completion_context(c, [helper])))

    return {
        "full_ms": median_ms(full),
        "incremental_ms": median_ms(incremental),
        "first_edit_ms": median_ms(first_edit),
        "ratio": statistics.median(incremental) / statistics.median(full),
        "first_ratio": statistics.median(first_edit) / statistics.median(full),
        "context_warm_ms": median_ms(warm),
        "context_warm_p95_ms": statistics.quantiles(warm, n=20)[-1] * 1000,
        "context_after_edit_ms": median_ms(after_edit),
    }


def main() -> int:
    files = [
        ("python", "python", python_file(LINES)),
        # Non-ASCII text exercises the code-point <-> byte conversion on every edit.
        ("python-utf8", "python", "# Größe ½ 𝔘\n" + python_file(LINES - 1)),
        ("rust", "rust", rust_file(LINES)),
        ("typescript", "typescript", typescript_file(LINES)),
    ]
    print(f"syntax benchmark: {LINES}-line files, medians; Python {sys.version.split()[0]}")
    header = (
        f"{'file':<12}{'full ms':>9}{'edit ms':>9}{'ratio':>8}{'first ms':>10}"
        f"{'first ratio':>13}{'ctx ms':>9}{'ctx p95':>9}{'ctx/edit':>10}"
    )
    print(header)
    worst_ratio = 0.0
    worst_first = 0.0
    worst_context = 0.0
    for label, language, text in files:
        r = bench(language, text)
        worst_ratio = max(worst_ratio, r["ratio"])
        worst_first = max(worst_first, r["first_ratio"])
        worst_context = max(worst_context, r["context_warm_ms"], r["context_after_edit_ms"])
        print(
            f"{label:<12}{r['full_ms']:>9.2f}{r['incremental_ms']:>9.3f}{r['ratio']:>8.3f}"
            f"{r['first_edit_ms']:>10.3f}{r['first_ratio']:>13.3f}"
            f"{r['context_warm_ms']:>9.3f}{r['context_warm_p95_ms']:>9.3f}"
            f"{r['context_after_edit_ms']:>10.3f}"
        )
    ratio_ok = worst_ratio <= 0.1
    context_ok = worst_context < 5.0
    print(
        f"incremental/full worst ratio {worst_ratio:.3f} while typing, {worst_first:.3f} for "
        f"the first edit after a full parse (target <= 0.1): {'met' if ratio_ok else 'MISSED'}"
    )
    print(
        f"completion context worst median {worst_context:.3f} ms (target well under 5 ms): "
        f"{'met' if context_ok else 'MISSED'}"
    )
    return 0 if ratio_ok and context_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
