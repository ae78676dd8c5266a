"""LSP inline completion round trip vs a direct engine call; $/cancelRequest to free.

1. The same inline completion (same document, cursor and model) is asked of
   ``ai-ide lsp`` over stdio and of an in-process Engine, alternately; prints
   the median of each and the ratio (target <= 1.05, issue 13).
2. A long completion is cancelled with ``$/cancelRequest``; prints the time
   until the server reports no active request (the model is free again).

    python bench/bench_lsp.py [--rounds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SAMPLE_PYTHON, default_model_settings, median, report
from engine.completion.pipeline import CompletionRequest
from engine.engine import Engine
from engine.runtime.messages import Priority, SamplingParams

URI = "file:///bench/shapes.py"
TEXT = SAMPLE_PYTHON + "\n\ndef describe(shape):\n    return "
MAX_TOKENS = 24


def position_at_end() -> types.Position:
    lines = TEXT.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1]))


async def lsp_round_trip(client: LanguageClient, version: int) -> float:
    # The same text under a new version: a fresh request, as after an edit.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=TEXT)],
        )
    )
    started = time.perf_counter()
    await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=position_at_end(),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    return (time.perf_counter() - started) * 1000.0


async def direct_call(engine: Engine) -> float:
    started = time.perf_counter()
    await engine.complete(
        CompletionRequest(
            code=TEXT,
            cursor=len(TEXT),
            language="python",
            file_path=URI,
            params=SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0),
            priority=Priority.INTERACTIVE,
        )
    )
    return (time.perf_counter() - started) * 1000.0


async def status(client: LanguageClient) -> dict[str, object]:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.showStatus", arguments=[{"quiet": True}])
    )
    assert isinstance(result, dict)
    return result


async def busy(client: LanguageClient) -> bool:
    """True while the server decodes or queues anything (speculation included)."""
    report = await status(client)
    return bool(report["active_requests"] or report["queue_length"])


async def main(rounds: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="ai-ide-bench-lsp-"))
    config = data / "lsp.toml"
    config.write_text(
        f'data_dir = "{data / "data"}"\n\n[inference]\nn_threads = {os.cpu_count()}\n',
        encoding="utf-8",
    )
    client = LanguageClient("bench", "1")
    await client.start_io(
        sys.executable, "-m", "lsp_server.cli", "lsp", "--no-http", "--config", str(config)
    )
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"maxTokens": MAX_TOKENS},
        )
    )
    client.initialized(types.InitializedParams())
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=URI, language_id="python", version=1, text=TEXT
            )
        )
    )
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.loadModel", arguments=[])
    )
    engine = Engine(default_model_settings(n_threads=os.cpu_count()))
    await engine.worker_for(engine.default_model_id())
    await direct_call(engine)
    await lsp_round_trip(client, 2)
    over_lsp: list[float] = []
    direct: list[float] = []
    for index in range(rounds):
        over_lsp.append(await lsp_round_trip(client, 3 + index))
        # The server may now compute a speculative next suggestion; wait until
        # it is idle so the two measurements do not share the CPU.
        while await busy(client):
            await asyncio.sleep(0.01)
        direct.append(await direct_call(engine))
    await engine.close()
    print(
        f"inline completion: LSP median {median(over_lsp):.1f} ms, "
        f"direct engine median {median(direct):.1f} ms"
    )
    report("lsp_vs_direct_engine", median(over_lsp) / median(direct), "<= 1.05")

    # Cancellation: a long generation, cancelled once it is decoding.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=1000),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = [\n")],
        )
    )
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"aiIde": {"maxTokens": 2000}})
    )
    freed: list[float] = []
    for index in range(5):
        request_id = f"long-{index}"
        pending = asyncio.wrap_future(
            client.protocol.send_request(
                types.TEXT_DOCUMENT_INLINE_COMPLETION,
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=URI),
                    position=types.Position(line=1, character=0),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Invoked
                    ),
                ),
                msg_id=request_id,
            )
        )
        await asyncio.sleep(0.3)
        if not (await status(client))["active_requests"]:
            await pending  # it finished before it could be cancelled: no sample
            continue
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
        started = time.perf_counter()
        while (await status(client))["active_requests"]:
            await asyncio.sleep(0.001)
        freed.append((time.perf_counter() - started) * 1000.0)
        with contextlib.suppress(Exception):  # RequestCancelled is the expected answer
            await pending
    if not freed:
        print("cancellation: every long request finished before it could be cancelled")
        return
    print(
        f"$/cancelRequest to a free model: median {median(freed):.1f} ms "
        "(includes one showStatus round trip)"
    )
    report("cancel_to_free_ms", median(freed), "about one token's time")
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    asyncio.run(main(parser.parse_args().rounds))
