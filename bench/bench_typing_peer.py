"""Typing in real files: this server (LSP and REST) against llama.cpp's llama-server.

Same GGUF (the embedded Gemma 3 270M unless ``--model``), same machine, same
llama.cpp version (llama-server is built from the source llama-cpp-python
vendors: ``bench/peers/build_llama_server.sh``), requests interleaved so that
noise hits all three alike:

- ``lsp``: ``ai-ide lsp --no-http`` over stdio (pygls client), incremental
  ``didChange`` per keystroke, then ``textDocument/inlineCompletion``;
- ``rest``: ``POST /v1/ai/inference/completion`` over loopback on the server
  ``ai-ide serve`` runs, in a process of its own as an editor or a script
  reaches it (a client in the server's process would share its event loop
  and GIL), streamed (time to first token), as a plain script sends it: no
  ``X-AI-IDE-Document`` header, so no type-through from the last answer;
- ``peer``: llama-server ``/completion`` (``/infill`` when the model has FIM
  tokens), ``cache_prompt`` on, ``--cache-reuse 256``, streamed; the prompt
  is the text before the cursor cut to the same budget at a line boundary,
  as a plain editor client sends it.

Workloads, in Python files of 100, 1,000 and 5,000 lines taken from the
standard library's own sources: typing a function at the end, typing it in
the middle, typing that jumps between the two places, and typing that
switches between two files. Figures: time to first token and full
line-completion latency per keystroke (p50, p95), the share of prompt tokens
served from the KV cache, then aggregate decode tokens/s at 1, 2 and 4
concurrent requests (in-process engine against llama-server with as many
slots). Every figure is printed as a ratio engine / llama-server.

    python bench/bench_typing_peer.py [--sizes 100,1000,5000] [--characters 24]

``--backend llama-server`` measures this server in front of llama-server:
the engine's model is a remote one (``backend = "llama-server"``) served by
a second llama-server of the same build and settings. The peer is then sent,
right after each REST call, exactly the request this server sent upstream
(same prompt, slot and sampling, cut to as many tokens as this server
generated), so both llama-servers do the same work and ``rest`` / ``peer`` is
what this server adds to a line completion (``--peer-plain``: the plain
client with its own prompt instead); the aggregate decode rates compare it
with llama-server asked as this server asks it (streamed, with each token's
log-probability). The language-server leg is left out (it would run a local
model).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import settle
from bench.peers.llama_server import running_llama_server
from bench.quality.clients import language_server
from bench.server_process import ServerProcess, rest_server_process
from engine.completion.prompts import TextPrompt
from engine.config import load_settings
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

TYPED = "def clamp(value, low, high):\n    return max(low, min(value, high))\n"
MAX_TOKENS = 24
PROMPT_CHARS = 1536 * 3  # about the engine's token budget, in characters of code
BASE = "/v1/ai"


@dataclass
class Sample:
    """One keystroke's figures from one client."""

    ttft_ms: float | None
    total_ms: float
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    # Tokens generated: the two sides' prompts differ, so their lines may
    # differ in length, which the line latency includes.
    generated: int | None = None


@dataclass
class Scenario:
    """Samples per client for one workload."""

    name: str
    samples: dict[str, list[Sample]] = field(default_factory=lambda: defaultdict(list))


# -- workloads ---------------------------------------------------------------------


def stdlib_python(lines: int, modules: tuple[str, ...] = ("argparse", "ast", "inspect")) -> str:
    """``lines`` lines of real Python from the standard library, cut at a top-level line."""
    import importlib

    text: list[str] = []
    for name in (*modules, "typing", "dataclasses"):
        text.extend(inspect.getsource(importlib.import_module(name)).splitlines(keepends=True))
    cut = lines
    while cut < len(text) and text[cut][:1] in (" ", "\t", "\n", ")", "]", "}"):
        cut += 1
    return "".join(text[:cut]).rstrip("\n") + "\n\n\n"


def middle_offset(code: str) -> int:
    """The start of a blank line before a top-level definition near the middle."""
    lines = code.splitlines(keepends=True)
    offset = 0
    starts = []
    for index, line in enumerate(lines):
        if (
            line.strip() == ""
            and index + 1 < len(lines)
            and lines[index + 1][:4] in ("def ", "clas")
        ):
            starts.append(offset)
        offset += len(line)
    if not starts:
        return len(code) // 2
    return min(starts, key=lambda s: abs(s - len(code) // 2))


@dataclass
class Document:
    """A file being edited: its URI, text and the version the editor is at."""

    uri: str
    text: str
    version: int = 1

    def insert(self, offset: int, char: str) -> tuple[int, int]:
        """Insert ``char`` at ``offset``; returns its (line, character) before the edit."""
        before = self.text[:offset]
        line = before.count("\n")
        character = len(before) - (before.rfind("\n") + 1)
        self.text = before + char + self.text[offset:]
        self.version += 1
        return line, character


def position(text: str, offset: int) -> types.Position:
    before = text[:offset]
    return types.Position(line=before.count("\n"), character=len(before) - (before.rfind("\n") + 1))


# -- clients -----------------------------------------------------------------------


class LspLeg:
    """``ai-ide lsp`` as an editor drives it."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.opened: set[str] = set()

    def open(self, doc: Document) -> None:
        if doc.uri in self.opened:
            return
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=doc.uri, language_id="python", version=doc.version, text=doc.text
                )
            )
        )
        self.opened.add(doc.uri)

    def change(self, doc: Document, line: int, character: int, char: str) -> None:
        point = types.Position(line=line, character=character)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=doc.uri, version=doc.version
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=point, end=point), text=char
                    )
                ],
            )
        )

    async def status(self) -> dict[str, Any]:
        """``ai-ide.showStatus``, without the message an editor would show."""
        report = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ai-ide.showStatus", arguments=[{"quiet": True}])
        )
        assert isinstance(report, dict)
        return report

    async def busy(self) -> bool:
        """True while the server decodes or queues anything (its speculation included)."""
        report = await self.status()
        return bool(report["active_requests"] or report["queue_length"])

    async def prompt_totals(self) -> tuple[int, int]:
        """The server's count of prompt tokens and of those its KV cache held, so far."""
        report = await self.status()
        model = next(m for m in report["models"] if m["id"] == "bench")
        return model["prompt_tokens"] or 0, model["cached_prompt_tokens"] or 0

    async def complete(self, doc: Document, cursor: int) -> Sample:
        prompt_before, cached_before = await self.prompt_totals()
        started = time.perf_counter()
        await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=doc.uri),
                position=position(doc.text, cursor),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        elapsed = (time.perf_counter() - started) * 1000.0
        # The engine counts a completion's prompt before it answers.
        prompt_after, cached_after = await self.prompt_totals()
        return Sample(
            None, elapsed, prompt_after - prompt_before, cached_after - cached_before, None
        )


async def read_sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """(event, data) pairs of a Server-Sent Events stream (``event:`` defaults to message)."""
    event = "message"
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            payload = line[5:].strip()
            if payload and payload != "[DONE]":
                yield event, json.loads(payload)
            event = "message"


class RestLeg:
    """This server's REST completion, streamed."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.last: Sample | None = None

    async def complete(self, doc: Document, cursor: int) -> Sample:
        body = {
            "context": {"language": "python", "code": doc.text, "cursor_position": cursor},
            # One line, as the peer is asked for (stop at the newline).
            "parameters": {"max_tokens": MAX_TOKENS, "temperature": 0.0, "stop_sequences": ["\n"]},
            "options": {"stream": True},
        }
        started = time.perf_counter()
        first: float | None = None
        final: dict[str, object] = {}
        async with self.http.stream("POST", f"{BASE}/inference/completion", json=body) as response:
            response.raise_for_status()
            async for event, data in read_sse(response):
                if event == "token" and first is None:
                    first = time.perf_counter()
                elif event in ("done", "completion", "result"):
                    final = data
                elif event == "error":
                    raise RuntimeError(str(data))
        total = (time.perf_counter() - started) * 1000.0
        metadata = _metadata(final)
        self.last = Sample(
            (first - started) * 1000.0 if first is not None else total,
            total,
            _int(metadata.get("prompt_tokens")),
            _int(metadata.get("cached_prompt_tokens")),
            _int(metadata.get("completion_tokens")),
        )
        return self.last


def _metadata(final: dict[str, object]) -> dict[str, object]:
    completion = final.get("completion")
    if isinstance(completion, dict):
        meta = completion.get("metadata")
        if isinstance(meta, dict):
            return meta
    return {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


class PeerLeg:
    """llama-server itself, as a plain editor client calls it."""

    def __init__(self, http: httpx.AsyncClient, base: str, fim: bool, n_probs: int = 0) -> None:
        self.http = http
        self.base = base
        self.fim = fim
        self.n_probs = n_probs

    async def complete(self, doc: Document, cursor: int) -> Sample:
        before = doc.text[:cursor]
        cut = max(0, len(before) - PROMPT_CHARS)
        if cut:
            cut = before.find("\n", cut) + 1
        body: dict[str, object] = {
            "n_predict": MAX_TOKENS,
            "temperature": 0.0,
            "stream": True,
            "cache_prompt": True,
            "stop": ["\n"],
        }
        if self.n_probs:
            body["n_probs"] = self.n_probs
        if self.fim:
            body |= {"input_prefix": before[cut:], "input_suffix": doc.text[cursor:][:2048]}
            return await self.send("/infill", body)
        body["prompt"] = before[cut:]
        return await self.send("/completion", body)

    async def send(self, path: str, body: dict[str, object]) -> Sample:
        """Stream one request to llama-server; its figures as a Sample."""
        url = f"{self.base}{path}"
        started = time.perf_counter()
        first: float | None = None
        final: dict[str, object] = {}
        for attempt in (1, 2):
            try:
                async with self.http.stream("POST", url, json=body) as response:
                    response.raise_for_status()
                    async for _, data in read_sse(response):
                        if first is None and data.get("content"):
                            first = time.perf_counter()
                        if data.get("stop"):
                            final = data
                break
            except httpx.RemoteProtocolError:
                # llama-server drops keep-alive connections idle for 5 s; a
                # client sends again on a new one (the engine's client does too).
                if attempt == 2 or first is not None:
                    raise
        total = (time.perf_counter() - started) * 1000.0
        timings = final.get("timings")
        evaluated = _int(final.get("tokens_evaluated"))
        cached: int | None = None
        if isinstance(timings, dict) and evaluated is not None:
            prompt_n = _int(timings.get("prompt_n"))
            if prompt_n is not None:
                cached = evaluated - prompt_n
        return Sample(
            (first - started) * 1000.0 if first is not None else total,
            total,
            evaluated,
            cached,
            _int(final.get("tokens_predicted")),
        )


class ReplayLeg:
    """llama-server given exactly the request this server sent upstream for the keystroke.

    Same prompt, slot and sampling, cut to the number of tokens this server
    generated, so both do the same work and ``rest`` / ``peer`` is what this
    server adds in front of llama-server. Runs right after the REST leg.
    """

    def __init__(self, peer: PeerLeg, server: ServerProcess, rest: RestLeg) -> None:
        self.peer = peer
        self.server = server
        self.rest = rest

    async def complete(self, doc: Document, cursor: int) -> Sample:
        path, body = await self.server.last_upstream()
        generated = self.rest.last.generated if self.rest.last is not None else None
        if generated:
            body = {**body, "n_predict": generated}
        return await self.peer.send(path, body)


# -- running -----------------------------------------------------------------------


def keystrokes(
    docs: list[Document], places: list[tuple[int, int]], characters: int
) -> Iterator[tuple[Document, int, str]]:
    """(document, offset, char) for each keystroke; places cycle per character.

    ``places`` are (document index, offset); each keeps its own cursor, so a
    trace that alternates between two places types the same text at both.
    """
    cursors = [offset for _, offset in places]
    for index in range(characters):
        slot = index % len(places)
        doc = docs[places[slot][0]]
        char = TYPED[index // len(places) % len(TYPED)]
        offset = cursors[slot]
        # Inserting before another place in the same document moves that place.
        for other, (doc_index, _) in enumerate(places):
            if other != slot and doc_index == places[slot][0] and cursors[other] >= offset:
                cursors[other] += 1
        cursors[slot] += 1
        yield doc, offset, char


async def run_scenario(
    name: str,
    texts: list[str],
    places: list[tuple[int, int]],
    characters: int,
    lsp: LspLeg | None,
    rest: RestLeg,
    peer: PeerLeg | ReplayLeg,
    run_id: int,
    server_busy: Callable[[], Awaitable[bool]],
) -> Scenario:
    scenario = Scenario(name)
    docs = [Document(f"file:///bench/{run_id}/file{i}.py", text) for i, text in enumerate(texts)]
    legs: list[tuple[str, Callable[[Document, int], object]]] = [
        ("rest", rest.complete),
        ("peer", peer.complete),
    ]
    if lsp is not None:
        for doc in docs:
            lsp.open(doc)
        legs.insert(0, ("lsp", lsp.complete))

    async def busy() -> bool:
        return await server_busy() or (lsp is not None and await lsp.busy())

    # Warm each place once (a first visit is a cold prompt for everyone).
    for doc_index, offset in places:
        for _, complete in legs:
            await complete(docs[doc_index], offset)  # type: ignore[misc]
            await settle(busy)
    for step, (doc, offset, char) in enumerate(keystrokes(docs, places, characters)):
        line, character = doc.insert(offset, char)
        if lsp is not None:
            lsp.change(doc, line, character, char)
        # Rotate who goes first, except that a replay follows what it replays.
        turn = 0 if isinstance(peer, ReplayLeg) else step % len(legs)
        order = legs[turn:] + legs[:turn]
        for leg, complete in order:
            sample = await complete(doc, offset + 1)  # type: ignore[misc]
            scenario.samples[leg].append(sample)
            await settle(busy)
    return scenario


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def summarize(scenario: Scenario) -> list[str]:
    rows = []
    peer = scenario.samples["peer"]
    for leg in ("lsp", "rest", "peer"):
        samples = scenario.samples[leg]
        if not samples:
            continue  # a leg left out of this run
        totals = [s.total_ms for s in samples]
        ttfts = [s.ttft_ms for s in samples if s.ttft_ms is not None]
        prompt = sum(s.prompt_tokens or 0 for s in samples)
        cached = sum(s.cached_tokens or 0 for s in samples)
        share = f"{cached / prompt:6.1%}" if prompt else "    - "
        line = f"  {leg:<5} line p50 {pct(totals, 0.5):7.0f} ms  p95 {pct(totals, 0.95):7.0f} ms"
        if ttfts:
            line += f"  ttft p50 {pct(ttfts, 0.5):6.0f} ms  p95 {pct(ttfts, 0.95):6.0f} ms"
        line += f"  cached {share}"
        if prompt:
            # Attention reads every cached cell: a longer prompt decodes more slowly.
            line += f"  prompt {prompt / len(samples):5.0f}"
        generated = [s.generated for s in samples if s.generated is not None]
        if generated:
            line += f"  tokens {sum(generated) / len(generated):4.1f}"
        # The decode rate after the first token: lines of different lengths
        # (the two sides' prompts differ) still compare per token.
        rates = [
            (s.total_ms - s.ttft_ms) / (s.generated - 1)
            for s in samples
            if s.ttft_ms is not None and s.generated is not None and s.generated > 1
        ]
        if rates:
            line += f"  ms/token p50 {pct(rates, 0.5):5.1f}"
        if leg != "peer" and peer:
            ratio50 = pct(totals, 0.5) / pct([s.total_ms for s in peer], 0.5)
            ratio95 = pct(totals, 0.95) / pct([s.total_ms for s in peer], 0.95)
            line += f"  | vs peer line p50 x{ratio50:.2f} p95 x{ratio95:.2f}"
            if ttfts:
                peer_ttft = [s.ttft_ms for s in peer if s.ttft_ms is not None]
                line += f" ttft p50 x{pct(ttfts, 0.5) / pct(peer_ttft, 0.5):.2f}"
        rows.append(line)
    return rows


async def engine_tokens_per_second(engine: Engine, model_id: str, streams: int) -> float:
    params = SamplingParams(max_tokens=64, ignore_eos=True)
    prompts = [TextPrompt(f"# task {i}\ndef solve_{i}(data):\n    ") for i in range(streams)]
    started = time.perf_counter()
    results = await asyncio.gather(
        *(engine.run(model_id, p, params, priority=Priority.NORMAL) for p in prompts)
    )
    elapsed = time.perf_counter() - started
    return sum(r.completion_tokens for r in results) / elapsed


async def peer_tokens_per_second(
    http: httpx.AsyncClient, base: str, streams: int, *, as_upstream: bool = False
) -> float:
    """llama-server's aggregate decode rate; ``as_upstream``: asked as this server asks it.

    In front of llama-server the engine's requests stream and ask for each
    token's log-probability and timings (see ``engine.remote.llama_server``);
    the peer is then asked the same way, so both do the same work.
    """

    async def one(index: int) -> int:
        body: dict[str, object] = {
            "prompt": f"# task {index}\ndef solve_{index}(data):\n    ",
            "n_predict": 64,
            "ignore_eos": True,
            "temperature": 0.0,
            "cache_prompt": False,
        }
        if not as_upstream:
            response = await http.post(f"{base}/completion", json=body)
            response.raise_for_status()
            predicted: int = response.json()["tokens_predicted"]
            return predicted
        body.update(stream=True, n_probs=1, timings_per_token=True)
        last: dict[str, object] = {}
        async with http.stream("POST", f"{base}/completion", json=body) as response:
            response.raise_for_status()
            async for _, data in read_sse(response):
                last = data
        return int(str(last.get("tokens_predicted", 0)))

    started = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(streams)))
    return sum(counts) / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="ai-ide-peer-bench-"))
    base_settings = load_settings(None, data_dir=data / "engine")
    probe = Engine(base_settings)
    model_id = probe.default_model_id()
    model_path = Path(args.model) if args.model else probe._resolve_path(probe.catalog[model_id])
    await probe.close()
    remote = args.backend == "llama-server"
    with contextlib.ExitStack() as stack:
        # The same KV room as the peer: 4 slots x 4,096 cells.
        model: dict[str, object] = {"path": str(model_path), "context_length": 16384}
        if remote:
            ours = stack.enter_context(
                running_llama_server(
                    model_path, slots=4, context=16384, threads=args.llama_server_threads
                )
            )
            model = {"backend": "llama-server", "url": ours, "parallel": 4}
        overrides: dict[str, Any] = dict(
            data_dir=data / "engine",
            models=[{"id": "bench", "name": "bench", **model}],
            include_default_model=False,
            completion={"model": "bench"},
            inference={
                "n_threads": os.cpu_count(),
                "n_seq_max": 4,
                "kv_cache": args.kv_cache,
                "swa_cache": args.swa_cache,
            },
            rate_limits={"enabled": False},
        )
        await measure(args, overrides, model_path, data, remote)


async def model_fim(http: httpx.AsyncClient, model_id: str) -> bool:
    """Whether the server's model has FIM tokens (``GET /models``)."""
    listing = (await http.get(f"{BASE}/models")).json()
    for model in listing["models"]:
        if model["id"] == model_id:
            return model.get("fim_family") not in (None, "none")
    raise RuntimeError(f"the server does not list the model {model_id!r}")


async def measure(
    args: argparse.Namespace,
    overrides: dict[str, Any],
    model_path: Path,
    data: Path,
    remote: bool,
) -> None:
    """Run the workloads against the three servers, then the decode rates; print each."""
    backend = "llama-server (this server in front of it)" if remote else "local"
    sizes = [int(s) for s in args.sizes.split(",")]
    with running_llama_server(
        model_path, slots=4, context=4 * 4096, threads=args.llama_server_threads
    ) as peer_base:
        async with contextlib.AsyncExitStack() as stack:
            peer_http = await stack.enter_async_context(httpx.AsyncClient(timeout=300))
            # ``ai-ide serve`` in a process of its own, as editors and scripts
            # reach it; stopped before the throughput figures.
            server_stack = await stack.enter_async_context(contextlib.AsyncExitStack())
            replay = remote and not args.peer_plain
            server = await server_stack.enter_async_context(
                rest_server_process(overrides, record_upstream=replay)
            )
            fim = await model_fim(server.http, "bench")
            print(
                f"model: {model_path.name} (FIM: {'yes' if fim else 'no'}); engine: {backend}; "
                f"threads: {os.cpu_count()}; REST server in a process of its own"
            )
            lsp: LspLeg | None = None
            # The language server's own stack: it is stopped before the
            # throughput figures, which its process (a second model on the
            # same cores) would otherwise skew.
            lsp_stack = await stack.enter_async_context(contextlib.AsyncExitStack())
            if not remote:
                client = await lsp_stack.enter_async_context(
                    language_server(model_path, data, MAX_TOKENS, os.cpu_count() or 2)
                )
                lsp = LspLeg(client)
            rest, plain = RestLeg(server.http), PeerLeg(peer_http, peer_base, fim)
            peer: PeerLeg | ReplayLeg = plain
            if replay:
                # In front of llama-server the peer is sent what this server
                # sent upstream, so the ratio is what this server adds.
                peer = ReplayLeg(plain, server, rest)
                print("peer: llama-server given the same upstream request (replayed)")
            run_id = 0
            for size in sizes:
                code = stdlib_python(size)
                other = stdlib_python(size, ("json.decoder", "shutil", "textwrap"))
                middle = middle_offset(code)
                workloads = {
                    "end": ([code], [(0, len(code))]),
                    "middle": ([code], [(0, middle)]),
                    "jump": ([code], [(0, middle), (0, len(code))]),
                    "switch": ([code, other], [(0, len(code)), (1, len(other))]),
                }
                for name, (texts, places) in workloads.items():
                    run_id += 1
                    scenario = await run_scenario(
                        f"{size} lines, {name}",
                        texts,
                        places,
                        args.characters,
                        lsp,
                        rest,
                        peer,
                        run_id,
                        server.busy,
                    )
                    print(f"{scenario.name}:")
                    for row in summarize(scenario):
                        print(row, flush=True)
            await lsp_stack.aclose()
            await server_stack.aclose()
            # The engine itself, in this process, for the decode rates.
            engine = Engine(load_settings(None, **overrides))
            try:
                await engine.worker_for("bench")  # loaded before anything is timed
                print("aggregate decode tokens/s (64 tokens per request):")
                for streams in (1, 2, 4):
                    ours = statistics.median(
                        [await engine_tokens_per_second(engine, "bench", streams) for _ in range(2)]
                    )
                    theirs = statistics.median(
                        [
                            await peer_tokens_per_second(
                                peer_http, peer_base, streams, as_upstream=remote
                            )
                            for _ in range(2)
                        ]
                    )
                    print(
                        f"  x{streams}: engine {ours:6.1f}  llama-server {theirs:6.1f}"
                        f"  ratio {ours / theirs:.2f}",
                        flush=True,
                    )
            finally:
                await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--characters", type=int, default=24, help="keystrokes per workload")
    parser.add_argument("--model", help="a GGUF file (default: the embedded Gemma 3 270M)")
    parser.add_argument(
        "--backend",
        choices=("local", "llama-server"),
        default="local",
        help="where the engine's model runs: in process, or behind a llama-server",
    )
    parser.add_argument(
        "--llama-server-threads",
        type=int,
        help="threads of each llama-server (default: every core); fewer leaves cores"
        " to this server's own process, as a llama-server on its own machine would",
    )
    parser.add_argument(
        "--kv-cache",
        choices=("shared", "per_slot"),
        default="per_slot",
        help="the engine's KV layout (inference.kv_cache); per_slot gives each of the 4"
        " slots 4,096 cells of its own, as llama-server's -c 16384 -np 4; shared lets"
        " any slot use all 16,384",
    )
    parser.add_argument(
        "--swa-cache",
        choices=("full", "window"),
        default="full",
        help="the engine's sliding-window caches (inference.swa_cache); llama-server keeps"
        " small ones ('window')",
    )
    parser.add_argument(
        "--peer-plain",
        action="store_true",
        help="with --backend llama-server: the peer is a plain client with its own prompt"
        " instead of a replay of this server's upstream request",
    )
    asyncio.run(main(parser.parse_args()))
