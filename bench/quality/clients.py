"""The clients compared: a naive prefix-only client, the engine in-process, over REST, over LSP.

Every client answers a :class:`~bench.quality.holes.Hole` with an :class:`Answer`:
the text to insert at the cursor and, when it replaces text after the cursor,
where that range ends. All decode greedily with the same token limit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.common import plain_llama
from bench.quality.holes import Hole
from engine.completion.pipeline import CompletionRequest
from engine.config import Settings
from engine.engine import Engine
from engine.runtime.messages import SamplingParams

# About the engine's prompt budget in characters of code: the naive client
# sends at most this much text before the cursor, cut at a line boundary.
NAIVE_PROMPT_CHARS = 1536 * 3

# The engine's slots and the bench model's KV cells (context_length): 4,096 a
# slot with inference.kv_cache = "per_slot", as llama-server's -c 16384 -np 4.
BENCH_SLOTS = 4
CONTEXT_LENGTH = 16384


@dataclass(frozen=True)
class Answer:
    """One client's answer to one hole."""

    text: str
    replace_end: int | None
    seconds: float
    error: str | None = None
    # The engine's generation before postprocessing, and whether the model
    # saw the suffix (in-process engine only): what `bench.quality.replay`
    # runs today's postprocessing on again.
    raw: str | None = None
    suffix_aware: bool | None = None


class Client(Protocol):
    """Something that fills holes."""

    name: str

    async def complete(self, hole: Hole, max_tokens: int) -> Answer:
        """Fill ``hole`` with at most ``max_tokens`` generated tokens."""
        ...

    async def busy(self) -> bool:
        """True while the client's server still works on its own (a guess, a warm-up)."""
        ...


def _engine_busy(engine: Engine | None) -> bool:
    if engine is None:
        return False
    health = engine.health()
    return bool(health.active_requests or health.queue_length)


class NaiveClient:
    """The text before the cursor to llama-cpp-python, greedy, stopped at the first newline.

    What a plain editor plugin does: no suffix, no context, no post-processing.
    """

    name = "naive"

    def __init__(self, model_path: Path, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self._llama = plain_llama(
            model_path,
            n_ctx=n_ctx,
            n_threads=n_threads or min(4, os.cpu_count() or 1),
            verbose=False,
        )
        # A decode runs on a worker thread that cancelling the caller does not
        # stop: close() must wait for it, or it frees the context under it.
        self._lock = threading.Lock()

    def _prompt(self, hole: Hole) -> str:
        prefix = hole.prefix
        if len(prefix) > NAIVE_PROMPT_CHARS:
            cut = prefix.find("\n", len(prefix) - NAIVE_PROMPT_CHARS)
            prefix = prefix[cut + 1 :] if cut >= 0 else prefix[-NAIVE_PROMPT_CHARS:]
        return prefix

    def _complete(self, prompt: str, max_tokens: int) -> str:
        with self._lock:
            # Each prompt is read from an empty cache, so that an answer does
            # not depend on the hole before it: llama.cpp's results vary with
            # the cached cells a read attends over, and a near-tie's greedy
            # token flips with them (the engine, too, reads a prompt that
            # shares no real prefix with a slot's cache from position 0).
            self._llama.reset()
            output = self._llama.create_completion(
                prompt=prompt, max_tokens=max_tokens, temperature=0.0, stop=["\n"]
            )
        return str(output["choices"][0]["text"])  # type: ignore[index]

    async def complete(self, hole: Hole, max_tokens: int) -> Answer:
        """Fill ``hole`` from its prefix alone."""
        started = time.perf_counter()
        text = await asyncio.to_thread(self._complete, self._prompt(hole), max_tokens)
        return Answer(text, None, time.perf_counter() - started)

    async def busy(self) -> bool:
        """Never: nothing runs between its requests."""
        return False

    def close(self) -> None:
        """Free the model, once a decode in flight has finished."""
        with self._lock:
            self._llama.close()


def _request(hole: Hole, max_tokens: int, model_id: str | None) -> CompletionRequest:
    return CompletionRequest(
        code=hole.document,
        cursor=hole.cursor,
        language=hole.language,
        file_path=hole.file_path,
        model_id=model_id,
        params=SamplingParams(max_tokens=max_tokens, temperature=0.0),
    )


class EngineClient:
    """The engine's completion pipeline called in-process (no transport)."""

    name = "engine"

    def __init__(self, engine: Engine, model_id: str | None = None) -> None:
        self._engine = engine
        self._model_id = model_id

    async def complete(self, hole: Hole, max_tokens: int) -> Answer:
        """Fill ``hole`` through :meth:`Engine.complete`."""
        started = time.perf_counter()
        result = await self._engine.complete(_request(hole, max_tokens, self._model_id))
        completion = result.completion
        return Answer(
            completion.text,
            completion.replace_end,
            time.perf_counter() - started,
            raw=completion.raw_text,
            suffix_aware=completion.generation.used_fim,
        )

    async def busy(self) -> bool:
        """True while the engine decodes or queues anything."""
        return _engine_busy(self._engine)


class RestClient:
    """``POST /v1/ai/inference/completion``, as an HTTP client sends it."""

    name = "rest"

    def __init__(
        self, http: httpx.AsyncClient, model_id: str | None = None, engine: Engine | None = None
    ) -> None:
        self._http = http
        self._model_id = model_id
        self._engine = engine  # the server's engine, when it runs in this process

    async def busy(self) -> bool:
        """True while the server's engine (if in this process) decodes or queues anything."""
        return _engine_busy(self._engine)

    async def complete(self, hole: Hole, max_tokens: int) -> Answer:
        """Fill ``hole`` through the REST endpoint."""
        body: dict[str, object] = {
            "context": {
                "language": hole.language,
                "code": hole.document,
                "cursor_position": hole.cursor,
                "file_path": hole.file_path,
            },
            "parameters": {"max_tokens": max_tokens, "temperature": 0.0},
        }
        if self._model_id is not None:
            body["model_id"] = self._model_id
        started = time.perf_counter()
        response = await self._http.post("/v1/ai/inference/completion", json=body, timeout=300)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            return Answer("", None, seconds, f"HTTP {response.status_code}: {response.text[:200]}")
        completion = response.json()["completion"]
        end = int(completion["metadata"]["replace_range"][1])
        return Answer(str(completion["text"]), end, seconds)


def _utf16_position(text: str, offset: int) -> types.Position:
    before = text[:offset]
    line_start = before.rfind("\n") + 1
    units = len(before[line_start:].encode("utf-16-le")) // 2
    return types.Position(line=before.count("\n"), character=units)


def _utf16_offset(text: str, position: types.Position) -> int:
    offset = 0
    for _ in range(position.line):
        newline = text.find("\n", offset)
        if newline < 0:
            return len(text)
        offset = newline + 1
    units = 0
    while offset < len(text) and units < position.character and text[offset] != "\n":
        units += 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    return offset


LSP_LANGUAGE_IDS = {"typescript": "typescript", "tsx": "typescriptreact"}


class LspClient:
    """``ai-ide lsp`` over stdio: the document opened as an editor opens it, then inline completion.

    With ``open_others`` the hole's other files are opened too (an editor with
    those tabs open); with ``workspace`` the hole's project folder on disk is
    the server's workspace folder (``workspace/didChangeWorkspaceFolders``
    when the project changes) and the document is opened under its real path,
    so that the open buffer, not the file on disk with the answer in it, is
    what the server sees. Documents are closed again after the answer. Each
    variant needs a server of its own: the ring of recent chunks and the
    workspace folders are per server. With ``fresh`` (a function that starts
    one) every hole gets a server of its own, started for it and shut down
    after: an editor that has just opened this one file, with no chunks of
    earlier holes, of other projects, in its ring.
    """

    def __init__(
        self,
        client: LanguageClient | None,
        *,
        open_others: bool = True,
        workspace: bool = True,
        name: str = "lsp",
        fresh: Callable[[], AbstractAsyncContextManager[LanguageClient]] | None = None,
    ) -> None:
        assert (client is None) == (fresh is not None), "a server, or a way to start them"
        self._client = client
        self._fresh = fresh
        self._count = 0
        self._open_others = open_others
        self._workspace = workspace
        self._folder: str | None = None
        self.name = name

    @property
    def _server(self) -> LanguageClient:
        assert self._client is not None, "no server started for this hole"
        return self._client

    def _use_folder(self, root: str) -> None:
        uri = Path(root).as_uri()
        if uri == self._folder:
            return
        removed = [types.WorkspaceFolder(self._folder, "old")] if self._folder else []
        self._server.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri, Path(root).name)], removed=removed
                )
            )
        )
        self._folder = uri

    def _open(self, uri: str, language: str, text: str) -> None:
        self._server.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri,
                    language_id=LSP_LANGUAGE_IDS.get(language, language),
                    version=1,
                    text=text,
                )
            )
        )

    async def busy(self) -> bool:
        """True while the server decodes or queues anything (its speculation included)."""
        if self._client is None:
            return False  # between two holes' fresh servers
        report = await self._client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ai-ide.showStatus", arguments=[{"quiet": True}])
        )
        assert isinstance(report, dict)
        return bool(report["active_requests"] or report["queue_length"])

    def _close(self, uri: str) -> None:
        self._server.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    async def complete(self, hole: Hole, max_tokens: int) -> Answer:
        """Fill ``hole`` with ``textDocument/inlineCompletion`` (``max_tokens`` is set at start)."""
        if self._fresh is None:
            return await self._complete(hole)
        async with self._fresh() as client:
            self._client = client
            self._folder = None  # a new server has no workspace folder yet
            try:
                return await self._complete(hole)
            finally:
                self._client = None

    async def _complete(self, hole: Hole) -> Answer:
        self._count += 1
        root = f"file:///quality/{self._count}"
        if self._workspace and hole.workspace_root:
            self._use_folder(hole.workspace_root)
            # file_path is "<package>/<path in it>"; the folder is the package.
            root = Path(hole.workspace_root).parent.as_uri()
        uri = f"{root}/{hole.file_path}"
        others = [(f"{root}/{path}", text) for path, text in hole.files if self._open_others]
        for other, text in others:
            self._open(other, hole.language, text)
        self._open(uri, hole.language, hole.document)
        started = time.perf_counter()
        try:
            result = await self._server.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=_utf16_position(hole.document, hole.cursor),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Invoked
                    ),
                )
            )
        finally:
            seconds = time.perf_counter() - started
            for other, _ in others:
                self._close(other)
            self._close(uri)
        items = result.items if isinstance(result, types.InlineCompletionList) else result or []
        if not items:
            return Answer("", None, seconds)
        item = items[0]
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        end = None if item.range is None else _utf16_offset(hole.document, item.range.end)
        return Answer(text, end, seconds)


@asynccontextmanager
async def language_server(
    model_path: Path, data: Path, max_tokens: int, n_threads: int, kv_cache: str = "per_slot"
) -> AsyncIterator[LanguageClient]:
    """``ai-ide lsp --no-http`` on one model file, initialized; shut down on exit."""
    config = data / "lsp.toml"
    config.write_text(
        f'data_dir = "{data / "lsp-data"}"\ninclude_default_model = false\n\n'
        f"[inference]\nn_threads = {n_threads}\nn_seq_max = {BENCH_SLOTS}\n"
        f'kv_cache = "{kv_cache}"\n\n'
        f'[[models]]\nid = "bench"\nname = "bench"\npath = "{model_path}"\n'
        f"context_length = {CONTEXT_LENGTH}\n",
        encoding="utf-8",
    )
    client = LanguageClient("quality", "1")
    await client.start_io(
        sys.executable, "-m", "lsp_server.cli", "lsp", "--no-http", "--config", str(config)
    )
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"model": "bench", "maxTokens": max_tokens},
        )
    )
    client.initialized(types.InitializedParams())
    try:
        yield client
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()  # type: ignore[no-untyped-call]


async def model_path_of(settings: Settings, model_id: str | None) -> tuple[str, Path]:
    """The catalog id and GGUF file of ``model_id`` (the default model when None)."""
    probe = Engine(settings)
    try:
        chosen = probe.resolve_model(model_id)
        # The embedded model is assembled from its package on first use.
        return chosen, probe._resolve_path(probe.catalog[chosen])
    finally:
        await probe.close()
