"""The LSP slice over stdio (pytest-lsp): inline completion and completion from llama.cpp."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from engine.completion.pipeline import CompletionRequest
from engine.engine import Engine
from engine.runtime.messages import SamplingParams

URI = "file:///project/geometry.py"
CODE = (
    "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\n"
    "def ring_area(outer, inner):\n    return "
)


async def start(client: LanguageClient, **options: object) -> types.InitializeResult:
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"model": "tiny-starcoder", "maxTokens": 24, **options},
        )
    )
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=URI, language_id="python", version=1, text=CODE
            )
        )
    )
    return result


def end_position() -> types.Position:
    lines = CODE.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1]))


async def expected_text(engine: Engine) -> str:
    """What the same model produces for the same document, called in-process."""
    result = await engine.complete(
        CompletionRequest(
            code=CODE,
            cursor=len(CODE),
            language="python",
            file_path=URI,
            model_id="tiny-starcoder",
            params=SamplingParams(max_tokens=24, temperature=0.0),
        )
    )
    return result.completion.text


async def test_capabilities_advertise_both_completion_kinds(lsp_client: LanguageClient) -> None:
    result = await start(lsp_client)
    capabilities = result.capabilities
    assert capabilities.inline_completion_provider is not None
    assert capabilities.completion_provider is not None
    assert result.server_info is not None and result.server_info.name == "ai-ide"


async def test_inline_completion_comes_from_llama_cpp(
    lsp_client: LanguageClient, engine: Engine
) -> None:
    await start(lsp_client)
    response = await lsp_client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=end_position(),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert isinstance(response, types.InlineCompletionList)
    assert len(response.items) == 1
    item = response.items[0]
    assert isinstance(item.insert_text, str) and item.insert_text
    assert item.insert_text == await expected_text(engine)
    # Nothing follows the cursor, so nothing is replaced: no range (the client
    # inserts at its cursor).
    assert item.range is None


async def test_completion_item_replaces_the_typed_word(
    lsp_client: LanguageClient, engine: Engine
) -> None:
    await start(lsp_client)
    response = await lsp_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=end_position()
        )
    )
    assert isinstance(response, types.CompletionList)
    assert response.is_incomplete is True
    item = response.items[0]
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.new_text.endswith(await expected_text(engine))
    assert item.text_edit.range.start.line == end_position().line


async def test_disabled_language_gets_no_completion(lsp_client: LanguageClient) -> None:
    await start(lsp_client, languages={"python": False})
    response = await lsp_client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=end_position(),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    assert response is None
