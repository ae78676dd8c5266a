"""What editors rely on (issue 12), over stdio with real llama.cpp on tiny models.

The command line VS Code's client builds, inline items that carry a range only
when they replace text, versioned edits that an editor with newer text refuses,
"thinking…" progress for slow completions, and quiet logs for superseded requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_server.cli import build_parser
from tests.conftest import lsp_server_command

PY_URI = "file:///project/shop.py"
PRICE = "def total(price, quantity, tax_rate):\n    return price * quantity * (1 + tax_rate)\n"
REPORT = (
    "def report(items):\n    total = sum(items)\n    count = len(items)\n    print(total / count)\n"
)
APPLY_EDIT = "ai-ide.applyEdit"
WAIT_S = 120


@pytest_asyncio.fixture
async def vscode_like(lsp_config_file: Path) -> AsyncIterator[LanguageClient]:
    """A client started the way vscode-languageclient starts a stdio server."""
    command = lsp_server_command(
        lsp_config_file, "--no-http", "--log-level", "debug", "--stdio", "--clientProcessId=4242"
    )
    client = await ClientServerConfig(server_command=command).start()
    assert isinstance(client, LanguageClient)
    try:
        yield client
    finally:
        await client.shutdown_session()
        await client.stop()


def capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(
            workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True)
        ),
    )


async def start(client: LanguageClient, **options: object) -> None:
    await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(),
            initialization_options={"model": "tiny-codellama", "maxTokens": 24, **options},
        )
    )


def open_doc(client: LanguageClient, text: str, version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=PY_URI, language_id="python", version=version, text=text
            )
        )
    )


def change(client: LanguageClient, version: int, line: int, character: int, text: str) -> None:
    at = types.Position(line=line, character=character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=PY_URI, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=at, end=at), text=text
                )
            ],
        )
    )


def inline(line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=PY_URI),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )


def selection(text: str, start: str, end: str) -> types.Range:
    """The range from the first ``start`` to the end of the first ``end`` after it."""
    begin = text.index(start)
    finish = text.index(end, begin) + len(end)

    def position(offset: int) -> types.Position:
        before = text[:offset]
        return types.Position(line=before.count("\n"), character=offset - before.rfind("\n") - 1)

    return types.Range(start=position(begin), end=position(finish))


async def actions(client: LanguageClient, where: types.Range) -> dict[str, types.CodeAction]:
    listed = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=PY_URI),
            range=where,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return {a.title: a for a in listed or [] if isinstance(a, types.CodeAction)}


def record_edits(client: LanguageClient, *, applied: bool) -> list[types.ApplyWorkspaceEditParams]:
    """Answer workspace/applyEdit with ``applied`` and keep what was asked."""
    seen: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        seen.append(params)
        return types.ApplyWorkspaceEditResult(applied=applied)

    return seen


async def wait_for(condition: Any, what: str) -> None:
    """Poll ``condition`` (bounded), for traffic that arrives after a response."""
    for _ in range(WAIT_S * 20):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_the_lsp_command_accepts_what_language_clients_add() -> None:
    parser = build_parser()
    args = parser.parse_args(["lsp", "--http-port", "8792", "--stdio", "--clientProcessId=77"])
    assert args.stdio is True and args.client_process_id == 77 and args.http_port == 8792
    assert parser.parse_args(["lsp", "--clientProcessId", "5"]).client_process_id == 5


def test_other_transports_are_refused_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    from lsp_server.cli import main

    assert main(["lsp", "--socket=5007"]) == 2
    assert "stdio only" in capsys.readouterr().err


async def test_a_server_started_with_stdio_flags_answers(vscode_like: LanguageClient) -> None:
    await start(vscode_like)
    open_doc(vscode_like, "def square(x):\n    return ")
    answer = await vscode_like.text_document_inline_completion_async(inline(1, 11))
    assert isinstance(answer, types.InlineCompletionList)


async def test_an_insertion_carries_no_range(vscode_like: LanguageClient) -> None:
    await start(vscode_like)
    open_doc(vscode_like, "def square(x):\n    return ")
    answer = await vscode_like.text_document_inline_completion_async(inline(1, 11))
    assert isinstance(answer, types.InlineCompletionList) and answer.items
    # The model only inserts here (nothing follows the cursor): an empty range
    # at the request's cursor is what broke Neovim once the user typed on.
    assert all(item.range is None for item in answer.items)


async def test_a_resolved_refactoring_is_a_versioned_edit(vscode_like: LanguageClient) -> None:
    await start(vscode_like)
    open_doc(vscode_like, PRICE, version=5)
    offered = await actions(vscode_like, selection(PRICE, "price * quantity", "quantity"))
    resolved = await vscode_like.code_action_resolve_async(offered["Extract variable"])
    assert resolved.command is None and resolved.edit is not None
    assert resolved.edit.changes is None and resolved.edit.document_changes is not None
    (document_edit,) = resolved.edit.document_changes
    assert isinstance(document_edit, types.TextDocumentEdit)
    assert document_edit.text_document.version == 5
    # The version is also in `data`, where a client can check it before applying.
    assert isinstance(resolved.data, dict) and resolved.data["version"] == 5


async def test_refactoring_edits_are_versioned_and_applied_by_a_command(
    vscode_like: LanguageClient,
) -> None:
    seen = record_edits(vscode_like, applied=True)
    await start(vscode_like, refactorEditsByCommand=True)
    open_doc(vscode_like, PRICE, version=7)
    offered = await actions(vscode_like, selection(PRICE, "price * quantity", "quantity"))
    resolved = await vscode_like.code_action_resolve_async(offered["Extract variable"])
    assert resolved.edit is None, "the edit travels in the command, to be version-checked"
    assert resolved.command is not None and resolved.command.command == APPLY_EDIT
    result = await vscode_like.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=resolved.command.command, arguments=resolved.command.arguments
        )
    )
    assert result == {"applied": True}
    edit = seen[0].edit
    assert edit.changes is None and edit.document_changes is not None
    (document_edit,) = edit.document_changes
    assert isinstance(document_edit, types.TextDocumentEdit)
    assert document_edit.text_document.uri == PY_URI
    assert document_edit.text_document.version == 7
    new_texts = "".join(e.new_text for e in document_edit.edits)
    assert "price * quantity" in new_texts and " = " in new_texts


async def test_an_editor_with_newer_text_refuses_and_the_user_is_told(
    vscode_like: LanguageClient,
) -> None:
    seen = record_edits(vscode_like, applied=False)
    await start(vscode_like, refactorEditsByCommand=True)
    open_doc(vscode_like, PRICE)
    offered = await actions(vscode_like, selection(PRICE, "price * quantity", "quantity"))
    resolved = await vscode_like.code_action_resolve_async(offered["Extract variable"])
    assert resolved.command is not None
    result = await vscode_like.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=resolved.command.command, arguments=resolved.command.arguments
        )
    )
    assert result == {"applied": False}
    assert len(seen) == 1
    await wait_for(
        lambda: any("not applied" in m.message for m in vscode_like.messages), "the message"
    )
    message = next(m for m in vscode_like.messages if "not applied" in m.message)
    assert message.type == types.MessageType.Warning
    assert "Extract variable" in message.message and "try again" in message.message


async def test_an_action_listed_for_an_older_version_is_not_computed(
    vscode_like: LanguageClient,
) -> None:
    seen = record_edits(vscode_like, applied=True)
    await start(vscode_like)
    open_doc(vscode_like, PRICE)
    offered = await actions(vscode_like, selection(PRICE, "price * quantity", "quantity"))
    change(vscode_like, 2, 0, 0, "# shop\n")
    resolved = await vscode_like.code_action_resolve_async(offered["Extract variable"])
    assert resolved.command is None and resolved.edit is None
    await wait_for(
        lambda: any("document changed" in m.message for m in vscode_like.messages), "the message"
    )
    assert seen == []


async def test_a_linewise_selection_of_statements_offers_extract_function(
    vscode_like: LanguageClient,
) -> None:
    await start(vscode_like)
    open_doc(vscode_like, REPORT)
    # What Vim's `V` on lines 2-3 sends: column 0 to the end of the last line.
    linewise = types.Range(
        start=types.Position(line=1, character=0),
        end=types.Position(line=2, character=len("    count = len(items)")),
    )
    assert "Extract function" in await actions(vscode_like, linewise)
    through_newline = types.Range(
        start=types.Position(line=1, character=0), end=types.Position(line=3, character=0)
    )
    assert "Extract function" in await actions(vscode_like, through_newline)
    # The same selection given end first (a client's bug) is the same selection.
    reversed_range = types.Range(start=linewise.end, end=linewise.start)
    assert "Extract function" in await actions(vscode_like, reversed_range)


async def test_an_edit_whose_range_is_given_end_first_replaces_the_same_text(
    vscode_like: LanguageClient,
) -> None:
    await start(vscode_like)
    open_doc(vscode_like, "alpha = 1\nbeta = 2\n")
    vscode_like.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=PY_URI, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=0, character=5),
                        end=types.Position(line=0, character=0),
                    ),
                    text="gamma",
                )
            ],
        )
    )
    # The server's copy, read back through the selection range of the first
    # word: `gamma` (0-5); inserting at the range's start gave `alphagamma`.
    ranges = await vscode_like.text_document_selection_range_async(
        types.SelectionRangeParams(
            text_document=types.TextDocumentIdentifier(uri=PY_URI),
            positions=[types.Position(line=0, character=1)],
        )
    )
    assert ranges is not None
    word = ranges[0].range
    assert (word.start, word.end) == (
        types.Position(line=0, character=0),
        types.Position(line=0, character=5),
    )


async def test_a_slow_completion_shows_thinking_progress(vscode_like: LanguageClient) -> None:
    # Delay 0: every completion counts as slow, so the progress is certain to show.
    await start(vscode_like, thinkingDelayMs=0)
    open_doc(vscode_like, "def square(x):\n    return ")
    await vscode_like.text_document_inline_completion_async(inline(1, 11))

    def thinking() -> list[Any]:
        return [
            reports
            for token, reports in vscode_like.progress_reports.items()
            if str(token).startswith("ai-ide-thinking-")
        ]

    await wait_for(
        lambda: any(isinstance(r[-1], types.WorkDoneProgressEnd) for r in thinking()),
        "the thinking progress to end",
    )
    reports = thinking()[0]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert reports[0].title == "ai-ide: thinking…"


async def test_a_fast_completion_shows_no_progress(vscode_like: LanguageClient) -> None:
    await start(vscode_like, thinkingDelayMs=60_000)
    open_doc(vscode_like, "def square(x):\n    return ")
    await vscode_like.text_document_inline_completion_async(inline(1, 11))
    assert not [t for t in vscode_like.progress_reports if str(t).startswith("ai-ide-thinking-")]


async def test_superseded_requests_are_logged_quietly(
    vscode_like: LanguageClient, capfd: pytest.CaptureFixture[str]
) -> None:
    await start(vscode_like, maxTokens=1500)
    open_doc(vscode_like, "x = [\n")
    await vscode_like.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.loadModel", arguments=["tiny-codellama"])
    )
    first = asyncio.wrap_future(
        vscode_like.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline(1, 0))
    )
    second = asyncio.wrap_future(
        vscode_like.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline(1, 0))
    )
    with pytest.raises(JsonRpcRequestCancelled):
        await first
    await second
    # The server's stderr reaches this process line by line: poll for the line.
    captured: list[str] = []

    def logged() -> bool:
        captured.append(capfd.readouterr().err)
        return "superseded" in "".join(captured)

    await wait_for(logged, "the superseded request's log line")
    err = "".join(captured)
    # At debug level pygls also logs the raw traffic (INFO "Sending data: ..."):
    # what matters is how the cancellation itself is reported.
    lines = [
        line
        for line in err.splitlines()
        if ("superseded" in line or "cancelled" in line) and "Sending data" not in line
    ]
    assert lines and all(" DEBUG " in line for line in lines), lines
    assert "Traceback" not in err and "JsonRpcRequestCancelled" not in err, err[-3000:]
