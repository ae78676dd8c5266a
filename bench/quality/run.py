"""One command, one report: every client on every hole, a table per split and language.

    python -m bench.quality [--model ID] [--config ai-ide.toml] [--limit 40]
        [--splits line,line_insert,block,span,real_line_end,real_line,real_block,cross_file]
        [--real-limit 10] [--cross-limit 20] [--sources DIR]
        [--clients naive,rest,lsp,lsp_workspace,lsp_alone,lsp_fresh,lsp_fresh_context]
        [--out DIR]

Functional holes (HumanEval) are executed against their tests: pass@1.
Real-code holes (see :mod:`bench.quality.realcode`; ``fetch_sources.sh DIR``
then ``--sources DIR``) and cross-file holes are judged by exact match and edit
similarity; ``lsp_alone`` is the LSP client without the hole's other files
open and without a workspace folder, the baseline that ``lsp`` (the other file
open, the package as workspace folder) and ``lsp_workspace`` (the workspace
folder only) are measured against, on the holes that have other files only;
``lsp_fresh`` is ``lsp_alone`` with a server started for each hole, so that
no earlier hole's file (of another project) is in its ring of recent chunks,
and ``lsp_fresh_context`` is ``lsp`` the same way: the pair measures what
the other files add for an editor that has just opened the project.
Clients see the same holes, in a rotating order so that warm-up and noise hit
them alike. Writes ``report.json`` (every sample, every
answer) and ``report.md`` (the tables) under ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from pygls.lsp.client import LanguageClient

from bench.common import settle
from bench.quality.clients import (
    BENCH_SLOTS,
    CONTEXT_LENGTH,
    Answer,
    Client,
    EngineClient,
    LspClient,
    NaiveClient,
    RestClient,
    language_server,
    model_path_of,
)
from bench.quality.holes import FUNCTIONAL_SPLITS, Hole, functional_holes
from bench.quality.metrics import edit_similarity, exact_match, median
from bench.quality.realcode import REAL_SPLITS, cross_file_holes, real_code_holes
from bench.quality.sandbox import Limits, run_python
from engine.config import Settings, load_settings
from engine.engine import Engine


@dataclass(frozen=True)
class LspVariant:
    """How an LSP client meets a hole."""

    open_others: bool  # the hole's other files are open documents
    workspace: bool  # the hole's package is the server's workspace folder
    # A server started for each hole: no earlier hole's chunks (of another
    # project) in its ring, as in an editor that has just opened the project.
    fresh: bool = False


LSP_VARIANTS = {
    "lsp": LspVariant(open_others=True, workspace=True),
    "lsp_workspace": LspVariant(open_others=False, workspace=True),
    "lsp_alone": LspVariant(open_others=False, workspace=False),
    "lsp_fresh": LspVariant(open_others=False, workspace=False, fresh=True),
    "lsp_fresh_context": LspVariant(open_others=True, workspace=True, fresh=True),
}


@dataclass
class Judged:
    """One client's answer to one hole, judged."""

    client: str
    answer: Answer
    passed: bool | None  # None: a text-only hole
    exact: bool
    similarity: float
    status: str = ""


def judge(hole: Hole, client: str, answer: Answer, limits: Limits) -> Judged:
    """Execute (functional holes) and compare (all holes) one answer."""
    candidate = hole.filled(answer.text, answer.replace_end)
    inserted = candidate[len(hole.prefix) : len(candidate) - len(hole.suffix)]
    exact = exact_match(inserted, hole.expected)
    similarity = edit_similarity(inserted, hole.expected)
    if not hole.test:
        return Judged(client, answer, None, exact, similarity)
    outcome = run_python(candidate + hole.test, limits)
    return Judged(client, answer, outcome.passed, exact, similarity, outcome.detail)


async def any_busy(clients: Sequence[Client]) -> bool:
    """Whether a client's server still works on its own (a guess, a context warm-up)."""
    return any([await client.busy() for client in clients])


async def fill_all(
    holes: Sequence[Hole],
    clients: Sequence[Client],
    max_tokens: int,
    limits: Limits,
    progress: Callable[[list[dict[str, Judged]]], object] | None = None,
) -> list[dict[str, Judged]]:
    """Every client's judged answer to every hole; ``progress`` sees the results so far."""
    results: list[dict[str, Judged]] = []
    started = time.perf_counter()
    for index, hole in enumerate(holes):
        order = list(clients[index % len(clients) :]) + list(clients[: index % len(clients)])
        row: dict[str, Judged] = {}
        for client in order:
            if client.name in LSP_VARIANTS and client.name != "lsp" and not hole.files:
                continue  # a baseline for holes with other files only
            # Another server's background work would share the CPU with this request.
            await settle(lambda: any_busy(clients))
            try:
                answer = await client.complete(hole, max_tokens)
            except Exception as exc:  # a failed request is a wrong answer, and reported
                answer = Answer("", None, 0.0, f"{type(exc).__name__}: {exc}")
            # Off the event loop: the in-process engine (REST) shares it.
            row[client.name] = await asyncio.to_thread(judge, hole, client.name, answer, limits)
        results.append(row)
        if (index + 1) % 10 == 0 or index + 1 == len(holes):
            elapsed = time.perf_counter() - started
            print(f"  {index + 1}/{len(holes)} holes, {elapsed:.0f} s", file=sys.stderr)
            if progress is not None:
                progress(results)
    return results


def summarize(
    holes: Sequence[Hole], results: Sequence[dict[str, Judged]], names: Sequence[str]
) -> list[dict[str, object]]:
    """Per (split, language, client): counts, pass@1, exact match, similarity, latency."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, hole in enumerate(holes):
        groups[(hole.split, hole.language)].append(index)
    rows: list[dict[str, object]] = []
    for (split, language), indexes in sorted(groups.items()):
        for name in names:
            judged = [results[i][name] for i in indexes if name in results[i]]
            if not judged:
                continue
            functional = [j for j in judged if j.passed is not None]
            naive = [results[i].get("naive") for i in indexes if name in results[i]]
            rows.append(
                {
                    "split": split,
                    "language": language,
                    "client": name,
                    "n": len(judged),
                    "pass@1": (
                        sum(bool(j.passed) for j in functional) / len(functional)
                        if functional
                        else None
                    ),
                    "exact_match": sum(j.exact for j in judged) / max(1, len(judged)),
                    "edit_similarity": sum(j.similarity for j in judged) / max(1, len(judged)),
                    "median_s": median([j.answer.seconds for j in judged]),
                    "empty": sum(not j.answer.text for j in judged),
                    "errors": sum(j.answer.error is not None for j in judged),
                    # Where this client failed and the naive client passed.
                    "losses_to_naive": sum(
                        1
                        for j, n in zip(judged, naive, strict=True)
                        if n is not None
                        and name != "naive"
                        and ((n.passed and not j.passed) if j.passed is not None else False)
                    ),
                }
            )
    return rows


def table(rows: Sequence[dict[str, object]], model: str) -> str:
    """The summary as a markdown table."""
    lines = [
        f"Model: `{model}`",
        "",
        "| split | language | client | n | pass@1 | exact | edit sim | median s | empty |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        passed = row["pass@1"]
        lines.append(
            f"| {row['split']} | {row['language']} | {row['client']} | {row['n']} | "
            f"{'-' if passed is None else f'{passed:.3f}'} | {row['exact_match']:.3f} | "
            f"{row['edit_similarity']:.3f} | {row['median_s']:.2f} | {row['empty']} |"
        )
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def open_clients(
    names: Sequence[str], settings: Settings, model_path: Path, max_tokens: int, threads: int
) -> AsyncIterator[list[Client]]:
    """Start the clients asked for; stop them on exit."""
    async with AsyncExitStack() as stack:
        clients: list[Client] = []
        engine: Engine | None = None
        lsp: LanguageClient | None = None
        if "engine" in names or "rest" in names:
            from lsp_server.sidecar.app import create_app
            from services.composition import Services, shutdown
            from services.keys import ApiKeyStore

            engine = Engine(settings)
            services = Services(engine, settings)
            await services.start()
            stack.push_async_callback(shutdown, engine, services)
            await engine.worker_for("bench")
            key = ApiKeyStore.in_data_dir(services.store, settings.data_dir).create("bench").key
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=create_app(engine, services, settings)),
                    base_url="http://quality",
                    headers={"X-API-Key": key},
                )
            )
        for name in names:
            if name == "naive":
                naive = NaiveClient(model_path, n_threads=threads)
                stack.callback(naive.close)
                clients.append(naive)
            elif name == "engine":
                assert engine is not None
                clients.append(EngineClient(engine, "bench"))
            elif name == "rest":
                clients.append(RestClient(http, "bench", engine))
            elif name in LSP_VARIANTS:
                # A server per variant: the ring of recent chunks and the
                # workspace folders of one must not help another.
                data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quality-lsp-")))

                def start(data: Path = data) -> AbstractAsyncContextManager[LanguageClient]:
                    return language_server(
                        model_path, data, max_tokens, threads, settings.inference.kv_cache
                    )

                variant = LSP_VARIANTS[name]
                fresh = start if variant.fresh else None
                lsp = None if fresh else await stack.enter_async_context(start())
                clients.append(
                    LspClient(
                        lsp,
                        open_others=variant.open_others,
                        workspace=variant.workspace,
                        name=name,
                        fresh=fresh,
                    )
                )
            else:
                raise SystemExit(f"unknown client {name!r}")
        yield clients


def bench_settings(
    data: Path, model_path: Path, threads: int, kv_cache: str = "per_slot"
) -> Settings:
    """Engine settings serving one model file as ``bench``, no rate limits."""
    return load_settings(
        None,
        data_dir=data,
        models=[
            {
                "id": "bench",
                "name": "bench",
                "path": str(model_path),
                "context_length": CONTEXT_LENGTH,
            }
        ],
        include_default_model=False,
        completion={"model": "bench"},
        inference={"n_threads": threads, "n_seq_max": BENCH_SLOTS, "kv_cache": kv_cache},
        rate_limits={"enabled": False},
    )


def collect_holes(args: argparse.Namespace) -> list[Hole]:
    """The holes of this run: functional splits, then real code, then cross-file."""
    splits = [s for s in args.splits.split(",") if s]
    holes = list(functional_holes([s for s in splits if s in FUNCTIONAL_SPLITS], args.limit))
    if args.cross_limit > 0 and "cross_file" in splits:
        holes += cross_file_holes(args.cross_limit)
    real = [s for s in splits if s in REAL_SPLITS]
    if args.real_limit > 0 and real:
        holes += real_code_holes(args.languages.split(","), args.real_limit, args.sources, real)
    return holes


async def main(args: argparse.Namespace) -> int:
    """Run the comparison and write the report."""
    # Stalls of the in-process server's loop are the benchmark's own load, not news.
    logging.getLogger("services.loop_monitor").setLevel(logging.ERROR)
    threads = args.threads or min(4, os.cpu_count() or 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="quality-"))
    model_id, model_path = await model_path_of(
        load_settings(args.config, data_dir=data / "probe"), args.model
    )
    settings = bench_settings(data / "engine", model_path, threads, args.kv_cache)
    # Interleaved (a fixed order): a report read midway covers every group.
    holes = sorted(collect_holes(args), key=lambda h: hashlib.sha256(h.sample_id.encode()).digest())
    names = [c for c in args.clients.split(",") if c]
    print(f"{len(holes)} holes, clients {names}, model {model_id}", file=sys.stderr)
    command = "python -m bench.quality " + " ".join(sys.argv[1:])

    def write(results: list[dict[str, Judged]]) -> str:
        return write_report(out, holes[: len(results)], results, names, model_id, command)

    async with open_clients(names, settings, model_path, args.max_tokens, threads) as clients:
        # The report is rewritten as holes are done: a long run can be read midway.
        results = await fill_all(holes, clients, args.max_tokens, Limits(), write)
    print(write(results))
    return 0


def write_report(
    out: Path,
    holes: Sequence[Hole],
    results: Sequence[dict[str, Judged]],
    names: Sequence[str],
    model_id: str,
    command: str,
) -> str:
    """Write ``report.md`` and ``report.json`` under ``out``; return the tables."""
    rows = summarize(holes, results, names)
    report = table(rows, model_id)
    (out / "report.md").write_text(f"{report}\nCommand: `{command}`\n", encoding="utf-8")
    samples = [
        {
            **hole.to_json(),
            "answers": {
                name: {
                    "text": j.answer.text,
                    "replace_end": j.answer.replace_end,
                    "seconds": round(j.answer.seconds, 4),
                    "error": j.answer.error,
                    "passed": j.passed,
                    "exact": j.exact,
                    "similarity": round(j.similarity, 4),
                    "status": j.status,
                    **(
                        {"raw": j.answer.raw, "suffix_aware": j.answer.suffix_aware}
                        if j.answer.raw is not None
                        else {}
                    ),
                }
                for name, j in row.items()
            },
        }
        for hole, row in zip(holes, results, strict=True)
    ]
    (out / "report.json").write_text(
        json.dumps(
            {"model": model_id, "command": command, "summary": rows, "samples": samples}, indent=1
        ),
        encoding="utf-8",
    )
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("--model", help="catalog model id (default: the default model)")
    parser.add_argument("--config", type=Path, help="ai-ide TOML whose catalog holds --model")
    parser.add_argument("--clients", default="naive,rest,lsp")
    parser.add_argument(
        "--splits", default=",".join((*FUNCTIONAL_SPLITS, *REAL_SPLITS, "cross_file"))
    )
    parser.add_argument("--limit", type=int, default=40, help="HumanEval tasks per split")
    parser.add_argument(
        "--real-limit", type=int, default=0, help="real-code holes per split and language"
    )
    parser.add_argument(
        "--cross-limit", type=int, default=0, help="cross-file holes (Python packages)"
    )
    parser.add_argument("--languages", default="python,javascript,typescript,rust,go,java")
    parser.add_argument("--sources", type=Path, help="folder of fetched sources (realcode.py)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--kv-cache",
        choices=("shared", "per_slot"),
        default="per_slot",
        help="the engine's KV layout (inference.kv_cache): 4,096 cells for each of 4 "
        "slots, or 16,384 that any slot may use",
    )
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "ai-ide-quality"))
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
