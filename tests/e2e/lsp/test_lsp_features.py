"""The language server end to end (pytest-lsp over stdio, real llama.cpp on tiny models)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

PY_URI = "file:///project/shapes.py"
RUST_URI = "file:///project/src/main.rs"
RUST = "fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }\n"
UNICODE = 's = "😀é"; größe = 1\n'


def record(client: LanguageClient) -> dict[str, list[Any]]:
    """Capture server-to-client traffic the default pytest-lsp client does not keep."""
    seen: dict[str, list[Any]] = {"status": [], "edits": []}

    @client.feature("ai-ide/modelStatus")
    def model_status(params: Any) -> None:
        seen["status"].append(params)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        seen["edits"].append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    return seen


async def start(
    client: LanguageClient,
    *,
    encodings: list[types.PositionEncodingKind] | None = None,
    options: dict[str, Any] | None = None,
    configuration: bool = False,
) -> types.InitializeResult:
    capabilities = types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=encodings)
        if encodings
        else None,
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(configuration=configuration),
    )
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            initialization_options={"model": "tiny-codellama", "maxTokens": 24, **(options or {})},
        )
    )


def open_doc(client: LanguageClient, uri: str, text: str, language: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=text
            )
        )
    )


def insert(
    client: LanguageClient, uri: str, version: int, line: int, character: int, text: str
) -> None:
    """didChange: ``text`` typed at (line, character), the document now at ``version``."""
    position = types.Position(line=line, character=character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=position, end=position), text=text
                )
            ],
        )
    )


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )


async def status(client: LanguageClient) -> dict[str, Any]:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.showStatus", arguments=[])
    )
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize(
    ("offered", "expected", "width"),
    [
        (None, "utf-16", 5),
        ([types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf8], "utf-8", 7),
        ([types.PositionEncodingKind.Utf32], "utf-32", 5),
    ],
)
async def test_positions_round_trip_in_the_negotiated_encoding(
    lsp_client: LanguageClient, offered: Any, expected: str, width: int
) -> None:
    result = await start(lsp_client, encodings=offered)
    assert str(result.capabilities.position_encoding) == expected
    open_doc(lsp_client, PY_URI, UNICODE, "python")
    # Column of `größe` in the negotiated units: after `s = "😀é"; `.
    head = 's = "😀é"; '
    column = {
        "utf-16": len(head.encode("utf-16-le")) // 2,
        "utf-8": len(head.encode()),
        "utf-32": len(head),
    }[expected]
    ranges = await lsp_client.text_document_selection_range_async(
        types.SelectionRangeParams(
            text_document=types.TextDocumentIdentifier(uri=PY_URI),
            positions=[types.Position(line=0, character=column + 1)],
        )
    )
    innermost = ranges[0].range
    # The identifier `größe` exactly, measured in the negotiated encoding.
    assert innermost.start == types.Position(line=0, character=column)
    assert innermost.end == types.Position(line=0, character=column + width)


async def test_selection_ranges_grow_outwards(lsp_client: LanguageClient) -> None:
    await start(lsp_client)
    open_doc(lsp_client, RUST_URI, RUST, "rust")
    ranges = await lsp_client.text_document_selection_range_async(
        types.SelectionRangeParams(
            text_document=types.TextDocumentIdentifier(uri=RUST_URI),
            positions=[types.Position(line=0, character=RUST.index("x >"))],
        )
    )
    chain = []
    node: types.SelectionRange | None = ranges[0]
    while node is not None:
        chain.append((node.range.start.character, node.range.end.character, node.range.end.line))
        node = node.parent
    assert len(chain) >= 3
    widths = [(end_line, end - start) for start, end, end_line in chain]
    assert widths == sorted(widths)  # each parent contains its child
    assert len(set(chain)) == len(chain)  # no duplicates


async def test_a_deeply_nested_expression_still_gets_its_selection_ranges(
    lsp_client: LanguageClient,
) -> None:
    # 1,000 levels of parentheses: the whole chain would be 1,000 JSON objects
    # one inside the next, beyond what the encoder can nest (no answer came).
    await start(lsp_client)
    depth = 1000
    text = "x = " + "(" * depth + "1" + ")" * depth + "\n"
    open_doc(lsp_client, PY_URI, text, "python")
    ranges = await lsp_client.text_document_selection_range_async(
        types.SelectionRangeParams(
            text_document=types.TextDocumentIdentifier(uri=PY_URI),
            positions=[types.Position(line=0, character=text.index("1"))],
        )
    )
    chain = []
    node: types.SelectionRange | None = ranges[0]
    while node is not None:
        chain.append(node.range)
        node = node.parent
    assert chain[0].start.character == text.index("1")  # the innermost: the literal
    assert chain[-1].start == types.Position(line=0, character=0)  # the whole document
    assert 3 <= len(chain) <= 100


async def test_out_of_range_positions_are_clamped(lsp_client: LanguageClient) -> None:
    await start(lsp_client)
    open_doc(lsp_client, PY_URI, "x = 1\ny = ", "python")
    result = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 99, 999))
    assert isinstance(result, types.InlineCompletionList)
    # Clamped to the end of the document, where nothing follows to be replaced:
    # an item there is a plain insertion, without a range.
    assert all(item.range is None for item in result.items)
    past_line_end = await lsp_client.text_document_selection_range_async(
        types.SelectionRangeParams(
            text_document=types.TextDocumentIdentifier(uri=PY_URI),
            positions=[types.Position(line=0, character=500)],
        )
    )
    assert past_line_end[0].range.end.line <= 1


async def test_did_change_storm_keeps_text_and_tree_in_step(lsp_client: LanguageClient) -> None:
    await start(lsp_client)
    open_doc(lsp_client, PY_URI, "", "python")
    typed = "def total(values):\n    result = 0\n    for v in values:\n        result += v\n"
    line, character, version = 0, 0, 1
    for char in typed:
        version += 1
        insert(lsp_client, PY_URI, version, line, character, char)
        if char == "\n":
            line, character = line + 1, 0
        else:
            character += 1
    # The whole-document range reflects every keystroke.
    ranges = await lsp_client.text_document_selection_range_async(
        types.SelectionRangeParams(
            text_document=types.TextDocumentIdentifier(uri=PY_URI),
            positions=[types.Position(line=3, character=9)],
        )
    )
    outer = ranges[0]
    while outer.parent is not None:
        outer = outer.parent
    assert outer.range.end.line >= 3
    inner = ranges[0].range
    assert (inner.start.line, inner.start.character, inner.end.character) == (3, 8, 14)  # `result`
    completion = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 4, 0))
    assert completion is not None


# Places whose inline completion may run long. The tiny models never end at
# an end-of-generation token, but the stop rules end a completion where the
# random weights close a block or a line, which depends on the CPU's
# arithmetic: the test takes the first place whose completion is long here.
_LONG_PLACES = (
    "x = [\n",
    "def f(items):\n    for item in items:\n        ",
    "class Box:\n    def __init__(self, size):\n        self.size = ",
    "numbers = (\n",
    "def total(values):\n    result = 0\n    ",
    '"""\n',
)


def _end_of(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])


async def _idle(client: LanguageClient, seconds: float = 60.0) -> None:
    """Until nothing decodes (a speculative guess after an answer included)."""
    deadline = time.monotonic() + seconds
    while (await status(client))["active_requests"]:
        assert time.monotonic() < deadline, "the server stayed busy"
        await asyncio.sleep(0.01)


async def test_cancel_request_stops_the_generation(lsp_client: LanguageClient) -> None:
    await start(lsp_client, options={"maxTokens": 1500})
    await lsp_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.loadModel", arguments=["tiny-codellama"])
    )
    # The work a cancel saves, timed in this run (a loaded machine slows both
    # sides): a place whose whole completion is long, in a document of its own.
    tried: list[int] = []
    for number, text in enumerate(_LONG_PLACES):
        probe = f"file:///project/long_{number}.py"
        open_doc(lsp_client, probe, text, "python")
        started = time.monotonic()
        answer = await lsp_client.text_document_inline_completion_async(
            inline_params(probe, *_end_of(text))
        )
        uncancelled = time.monotonic() - started
        items = answer.items if isinstance(answer, types.InlineCompletionList) else answer or []
        written = len(str(items[0].insert_text)) if items else 0
        tried.append(written)
        if written >= 300:
            break
    else:
        pytest.fail(f"no place completes at length here: {tried}")
    await _idle(lsp_client)
    open_doc(lsp_client, PY_URI, text, "python")
    # send_request (not the coroutine variant) puts the request on the wire now.
    request = asyncio.wrap_future(
        lsp_client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            inline_params(PY_URI, *_end_of(text)),
            msg_id="long-one",
        )
    )
    # Wait until it is decoding, then cancel it.
    for _ in range(200):
        if (await status(lsp_client))["active_requests"]:
            break
        await asyncio.sleep(0.005)
    lsp_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-one"))
    cancelled_at = time.monotonic()
    with pytest.raises(JsonRpcRequestCancelled):
        await request
    await _idle(lsp_client, seconds=uncancelled)
    until_free = time.monotonic() - cancelled_at
    assert until_free < uncancelled / 4, (until_free, uncancelled, tried)


async def test_typing_through_a_suggestion_reuses_it(lsp_client: LanguageClient) -> None:
    await start(lsp_client, options={"model": "tiny-qwen", "maxTokens": 24})
    text = "def area(r):\n    return "
    open_doc(lsp_client, PY_URI, text, "python")
    first = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 1, 11))
    assert isinstance(first, types.InlineCompletionList) and first.items
    suggestion = first.items[0].insert_text
    assert isinstance(suggestion, str) and len(suggestion) > 2
    typed = suggestion[:2]
    insert(lsp_client, PY_URI, 2, 1, 11, typed)
    second = await lsp_client.text_document_inline_completion_async(
        inline_params(PY_URI, 1, 11 + len(typed))
    )
    assert isinstance(second, types.InlineCompletionList)
    assert second.items[0].insert_text == suggestion[2:]
    report = await status(lsp_client)
    qwen = next(m for m in report["models"] if m["id"] == "tiny-qwen")
    assert qwen["inference_count"] == 2 and qwen["cache_hit_rate"] == 0.5


async def test_the_status_counts_prompt_tokens_read_from_the_kv_cache(
    lsp_client: LanguageClient,
) -> None:
    async def qwen() -> dict[str, Any]:
        report = await status(lsp_client)
        return next(m for m in report["models"] if m["id"] == "tiny-qwen")

    await start(lsp_client, options={"model": "tiny-qwen", "maxTokens": 4})
    text = "def area(r):\n    return r * r\n\n\ndef volume(r, h):\n    return "
    open_doc(lsp_client, PY_URI, text, "python")
    start_figures = await qwen()
    first = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 5, 11))
    assert isinstance(first, types.InlineCompletionList)
    before = await qwen()
    assert before["prompt_tokens"] - (start_figures["prompt_tokens"] or 0) > 10
    # A keystroke the suggestion did not foresee: a new inference, whose
    # prompt shares everything up to the cursor line with the first one's.
    suggested = first.items[0].insert_text if first.items else ""
    typed = "h" if not str(suggested).startswith("h") else "q"
    insert(lsp_client, PY_URI, 2, 5, 11, typed)
    await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 5, 12))
    after = await qwen()
    assert after["inference_count"] == before["inference_count"] + 1
    added = after["prompt_tokens"] - before["prompt_tokens"]
    cached = after["cached_prompt_tokens"] - before["cached_prompt_tokens"]
    assert added > 10 and added - 4 <= cached < added, (added, cached)


async def test_code_actions_are_listed_instantly_and_resolved_by_the_model(
    lsp_client: LanguageClient,
) -> None:
    await start(lsp_client)
    open_doc(lsp_client, RUST_URI, RUST, "rust")
    start_col = RUST.index("if x")
    end_col = RUST.index("{ y }") + len("{ y }")  # the whole if-else expression
    selection = types.Range(
        start=types.Position(line=0, character=start_col),
        end=types.Position(line=0, character=end_col),
    )
    begun = time.monotonic()
    actions = await lsp_client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=RUST_URI),
            range=selection,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    listed_in = time.monotonic() - begun
    assert actions is not None
    by_title = {a.title: a for a in actions if isinstance(a, types.CodeAction)}
    extract = by_title["Extract variable"]
    assert extract.kind == types.CodeActionKind.RefactorExtract
    assert extract.edit is None  # the model runs only on resolve
    assert listed_in < 2.0
    resolved = await lsp_client.code_action_resolve_async(extract)
    # A versioned edit: the editor applies it only to the version it names.
    edit = resolved.edit
    assert edit is not None and edit.document_changes is not None
    (document_edit,) = edit.document_changes
    assert isinstance(document_edit, types.TextDocumentEdit)
    assert document_edit.text_document.version == 1
    edits = document_edit.edits
    assert "let " in "".join(e.new_text for e in edits)
    assert any(e.new_text.strip() and "if x > y" in e.new_text for e in edits)

    only_rewrite = await lsp_client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=RUST_URI),
            range=selection,
            context=types.CodeActionContext(
                diagnostics=[], only=[types.CodeActionKind.RefactorRewrite]
            ),
        )
    )
    assert only_rewrite is not None
    assert all(
        a.kind == types.CodeActionKind.RefactorRewrite
        for a in only_rewrite
        if isinstance(a, types.CodeAction)
    )


async def test_nothing_is_offered_where_it_makes_no_sense(lsp_client: LanguageClient) -> None:
    await start(lsp_client)
    open_doc(lsp_client, PY_URI, "# just a comment\n", "python")
    actions = await lsp_client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=PY_URI),
            range=types.Range(
                start=types.Position(line=0, character=2), end=types.Position(line=0, character=6)
            ),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    titles = [a.title for a in actions or [] if isinstance(a, types.CodeAction)]
    assert "Extract variable" not in titles and "Extract function" not in titles


async def test_commands_load_status_generate_unload(lsp_client: LanguageClient) -> None:
    seen = record(lsp_client)
    await start(lsp_client)
    loaded = await lsp_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.loadModel", arguments=["tiny-deepseek"])
    )
    assert loaded == {"model_id": "tiny-deepseek", "status": "loaded"}
    # $/progress with percentages, begun and ended.
    await asyncio.sleep(0.2)
    reports = [
        r for token, r in lsp_client.progress_reports.items() if "tiny-deepseek" in str(token)
    ]
    assert reports, lsp_client.progress_reports
    kinds = [type(v).__name__ for v in reports[0]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    statuses = [p.status if hasattr(p, "status") else p["status"] for p in seen["status"]]
    assert "loading" in statuses and "loaded" in statuses

    report = await status(lsp_client)
    deepseek = next(m for m in report["models"] if m["id"] == "tiny-deepseek")
    assert deepseek["status"] == "loaded" and deepseek["memory_usage_mb"] > 0
    assert any("ai-ide" in m.message for m in lsp_client.messages)

    open_doc(lsp_client, PY_URI, "import os\n\n# list the files in a folder\n", "python")
    generated = await lsp_client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="ai-ide.generate",
            arguments=[{"uri": PY_URI, "position": {"line": 2, "character": 5}}],
        )
    )
    assert generated["applied"] is True and generated["text"]
    (document_edit,) = seen["edits"][0].edit.document_changes
    assert document_edit.text_document.uri == PY_URI
    edit = document_edit.edits[0]
    assert edit.new_text.strip() == generated["text"].strip()
    assert edit.range.start.line == 2  # after the comment line

    unloaded = await lsp_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.unloadModel", arguments=["tiny-deepseek"])
    )
    assert unloaded["model_id"] == "tiny-deepseek" and unloaded["unload_time_ms"] > 0


async def test_malformed_command_arguments_are_invalid_params(lsp_client: LanguageClient) -> None:
    await start(lsp_client)
    open_doc(lsp_client, PY_URI, "# add two numbers\n", "python")
    for position in ({"line": "x", "character": 0}, {"line": -1, "character": 0}, [1, 2]):
        with pytest.raises(JsonRpcInvalidParams) as raised:
            await lsp_client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="ai-ide.generate", arguments=[{"uri": PY_URI, "position": position}]
                )
            )
        assert raised.value.data["details"]["field"] == "position"
    # Not a workspace edit: refused, rather than an empty edit "applied".
    for edit in ("bad", 7, None):
        with pytest.raises(JsonRpcInvalidParams):
            await lsp_client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="ai-ide.applyEdit", arguments=[{"title": "t", "edit": edit}]
                )
            )
    # Not a model id: refused, rather than loading the default model instead.
    for argument in (123, {"id": "tiny-qwen"}):
        with pytest.raises(JsonRpcInvalidParams):
            await lsp_client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="ai-ide.loadModel", arguments=[argument])
            )
    report = await status(lsp_client)
    assert all(m["status"] != "loaded" for m in report["models"])


async def test_generated_code_keeps_the_documents_line_breaks(lsp_client: LanguageClient) -> None:
    seen = record(lsp_client)
    await start(lsp_client)
    applied = 0
    for text, newline in (("# add two numbers\r\nx = 1\r\n", "\r\n"), ("# add two\rx = 1\r", "\r")):
        seen["edits"].clear()
        open_doc(lsp_client, PY_URI, text, "python")
        generated = await lsp_client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="ai-ide.generate",
                arguments=[{"uri": PY_URI, "position": {"line": 0, "character": 3}}],
            )
        )
        if not generated["applied"]:
            continue  # the tiny model wrote only blanks: there is no edit
        applied += 1
        (document_edit,) = seen["edits"][0].edit.document_changes
        edit = document_edit.edits[0]
        # After the comment line (not at the end of the file), on a line of its own.
        assert edit.range.start == types.Position(line=0, character=text.index(newline))
        assert edit.new_text.startswith(newline)
        assert edit.new_text.replace(newline, "").count("\n") == 0
        assert edit.new_text.replace(newline, "").count("\r") == 0
    assert applied  # the tiny model writes something for at least one of them


async def test_a_change_to_a_document_never_opened_is_ignored_quietly(
    lsp_client: LanguageClient,
) -> None:
    await start(lsp_client)
    lsp_client.messages.clear()
    never = "file:///project/never_opened.py"
    lsp_client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=never, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = 1\n")],
        )
    )
    await status(lsp_client)  # a round trip: a message about the change has arrived by now
    assert not [m for m in lsp_client.messages if m.type == types.MessageType.Error]
    # The server goes on serving documents that are open.
    open_doc(lsp_client, PY_URI, "x = ", "python")
    result = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 0, 4))
    assert isinstance(result, types.InlineCompletionList)


async def test_quiet_status_answers_without_a_message(lsp_client: LanguageClient) -> None:
    """A status bar or health check polling the status gets no popup each time."""
    await start(lsp_client)
    lsp_client.messages.clear()
    quiet = await lsp_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="ai-ide.showStatus", arguments=[{"quiet": True}])
    )
    assert isinstance(quiet, dict) and quiet["models"]
    await status(lsp_client)  # a round trip after it: its message would have arrived by now
    summaries = [m for m in lsp_client.messages if m.message.startswith("ai-ide (")]
    assert len(summaries) == 1  # only the plain call's


async def test_failing_command_shows_a_message(lsp_client: LanguageClient) -> None:
    await start(lsp_client)
    with pytest.raises(JsonRpcInternalError):
        await lsp_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ai-ide.unloadModel", arguments=["tiny-qwen"])
        )
    assert any(m.type == types.MessageType.Error for m in lsp_client.messages)
    assert any("MODEL_NOT_LOADED" in m.message for m in lsp_client.log_messages)


async def test_invalid_settings_give_a_message_and_defaults(lsp_client: LanguageClient) -> None:
    await start(lsp_client, options={"maxTokens": "lots", "languages": {"python": True}})
    report = await status(lsp_client)
    assert report["config"]["maxTokens"] == 64  # the default
    assert report["config"]["model"] == "tiny-codellama"  # valid settings are kept
    assert any("maxTokens" in m.message for m in lsp_client.messages)


async def test_an_unknown_model_setting_warns_and_falls_back_to_the_default(
    lsp_client: LanguageClient,
) -> None:
    await start(lsp_client)
    open_doc(lsp_client, PY_URI, "def area(r):\n    return ", "python")
    lsp_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"aiIde": {"model": "no-such-model"}})
    )
    await asyncio.sleep(0.1)
    lsp_client.messages.clear()
    first = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 1, 11))
    second = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 1, 11))
    # Answered by the default model, not silently nothing.
    assert isinstance(first, types.InlineCompletionList) and first.items
    assert isinstance(second, types.InlineCompletionList)
    warnings = [m for m in lsp_client.messages if "no-such-model" in m.message]
    assert len(warnings) == 1 and warnings[0].type == types.MessageType.Warning
    report = await status(lsp_client)
    assert report["config"]["model"] is None


async def test_configuration_is_pulled_and_follows_changes(lsp_client: LanguageClient) -> None:
    lsp_client.set_configuration({"maxTokens": 7, "model": "tiny-qwen"}, section="aiIde")
    await start(lsp_client, configuration=True)
    await asyncio.sleep(0.3)
    report = await status(lsp_client)
    assert report["config"]["maxTokens"] == 7
    assert report["completion_model"] == "tiny-qwen"

    open_doc(lsp_client, PY_URI, "x = ", "python")
    lsp_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"aiIde": {"languages": {"python": False}}})
    )
    await asyncio.sleep(0.1)
    off = await lsp_client.text_document_inline_completion_async(inline_params(PY_URI, 0, 4))
    assert off is None
