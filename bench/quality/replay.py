"""Judge today's postprocessing on the generations a report recorded, without a model.

    python -m bench.quality.replay REPORT.json [--client engine] [--out DIR]

A report of the in-process ``engine`` client keeps each answer's raw
generation and whether the model saw the suffix. This runs the pipeline's
postprocessing (:func:`engine.completion.pipeline.finish_completion`) on each
raw text again and judges the result as the benchmark does (functional holes
executed against their tests), next to the recorded answer and the naive
client's. A change to the postprocessing rules is then measured in seconds
on the same generations, rather than in a model run whose other answers may
move with it.

What it cannot show: text the decode loop never produced. Generation stopped
where the rules of the run said so (``should_stop``), so a rule that keeps
*more* than those did is judged on a cut raw text; one that keeps less, or
the same, is judged exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.quality.clients import Answer
from bench.quality.holes import Hole
from bench.quality.run import Judged, judge, summarize, table
from bench.quality.sandbox import Limits
from engine.completion.pipeline import CompletionRequest, finish_completion
from engine.runtime.messages import GenerationResult

REPLAYED = "replayed"


def _hole(sample: dict[str, Any]) -> Hole:
    # Other files are recorded by path only; postprocessing never reads them.
    fields = ("sample_id", "split", "language", "file_path", "prefix", "suffix", "expected")
    return Hole(**{name: sample[name] for name in fields}, test=sample.get("test", ""))


def replayed_answer(hole: Hole, raw: str, suffix_aware: bool) -> Answer:
    """The answer today's postprocessing makes of ``raw`` for ``hole``."""
    request = CompletionRequest(code=hole.document, cursor=hole.cursor, language=hole.language)
    generation = GenerationResult(
        request_id="replay",
        text=raw,
        completion_tokens=0,
        prompt_tokens=0,
        cached_prompt_tokens=0,
        confidence=0.0,
        mean_logprob=0.0,
        finish_reason="stop",
        queue_ms=0.0,
        prompt_ms=0.0,
        decode_ms=0.0,
        first_token_ms=0.0,
        total_ms=0.0,
        used_fim=suffix_aware,
    )
    completion = finish_completion(request, generation)
    return Answer(completion.text, completion.replace_end, 0.0)


def replay(
    samples: Sequence[dict[str, Any]], client: str, limits: Limits
) -> tuple[list[Hole], list[dict[str, Judged]]]:
    """Each sample's recorded answers, judged again, with ``client``'s replayed beside them."""
    holes: list[Hole] = []
    results: list[dict[str, Judged]] = []
    for sample in samples:
        recorded = sample["answers"].get(client)
        if recorded is None or recorded.get("raw") is None:
            continue
        hole = _hole(sample)
        row: dict[str, Judged] = {}
        for name, answer in sample["answers"].items():
            kept = Answer(answer["text"], answer["replace_end"], answer["seconds"])
            row[name] = judge(hole, name, kept, limits)
        again = replayed_answer(hole, recorded["raw"], bool(recorded.get("suffix_aware")))
        row[REPLAYED] = judge(hole, REPLAYED, again, limits)
        holes.append(hole)
        results.append(row)
    return holes, results


def changed(holes: Sequence[Hole], results: Sequence[dict[str, Judged]], client: str) -> str:
    """The holes whose replayed answer differs from the recorded one, for reading."""
    lines = []
    for hole, row in zip(holes, results, strict=True):
        before, after = row[client], row[REPLAYED]
        if before.answer.text == after.answer.text:
            continue
        verdict = f"passed {before.passed} -> {after.passed}, exact {before.exact} -> {after.exact}"
        lines.append(f"## {hole.sample_id} ({verdict})")
        lines.append(f"expected: {hole.expected!r}")
        lines.append(f"recorded: {before.answer.text!r}")
        lines.append(f"replayed: {after.answer.text!r}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Replay a report; print the tables and write them (and the changed holes) under --out."""
    parser = argparse.ArgumentParser(prog="python -m bench.quality.replay", description=__doc__)
    parser.add_argument("report", type=Path, help="report.json of a run with the engine client")
    parser.add_argument("--client", default="engine", help="the client whose raw text to replay")
    parser.add_argument("--out", type=Path, help="folder for replay.md and replay-changed.md")
    args = parser.parse_args(argv)
    data = json.loads(args.report.read_text(encoding="utf-8"))
    holes, results = replay(data["samples"], args.client, Limits())
    if not holes:
        print(f"no answer of {args.client!r} has a raw text in {args.report}", file=sys.stderr)
        return 1
    names = [*data["samples"][0]["answers"].keys(), REPLAYED]
    report = table(summarize(holes, results, names), str(data["model"]))
    print(report)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "replay.md").write_text(report, encoding="utf-8")
        (args.out / "replay-changed.md").write_text(
            changed(holes, results, args.client) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
