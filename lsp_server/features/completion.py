"""Inline completion (LSP 3.18) and completion, from the engine's FIM pipeline."""

from __future__ import annotations

import logging
from dataclasses import replace

from lsprotocol import types

from engine.completion.pipeline import CompletionRequest, CompletionResult
from engine.errors import EngineError
from engine.runtime.messages import Priority, SamplingParams
from lsp_server.convert import to_offset, to_range, word_start
from lsp_server.errors import to_jsonrpc_error
from lsp_server.features.lifecycle import with_model_fallback
from lsp_server.positions import Encoding, LineIndex
from lsp_server.server import AiIdeLanguageServer

log = logging.getLogger(__name__)


async def _complete_at(
    ls: AiIdeLanguageServer, uri: str, position: types.Position
) -> tuple[CompletionResult, LineIndex, int] | None:
    doc = ls.backend.documents.get(uri)
    if doc is None or not ls.config.enabled:
        return None
    if not (
        ls.config.language_enabled(doc.language_id) and ls.config.language_enabled(doc.language)
    ):
        return None
    # What this answer is for: positions and ranges are computed on this text.
    version = doc.version
    index = ls.line_index(uri, doc.text)
    cursor = to_offset(index, position, ls.encoding)
    request = CompletionRequest(
        code=doc.text,
        cursor=cursor,
        language=doc.language,
        file_path=uri,
        model_id=ls.config.model,
        params=SamplingParams(max_tokens=ls.config.max_tokens, temperature=0.0),
        priority=Priority.INTERACTIVE,
        document_key=uri,
    )
    try:
        async with ls.thinking.running():
            result = await with_model_fallback(
                ls,
                request.model_id,
                lambda model_id: ls.backend.complete(replace(request, model_id=model_id)),
            )
    except EngineError as exc:
        if exc.code == "REQUEST_CANCELLED":
            raise to_jsonrpc_error(exc) from exc
        # A completion that cannot be made is not worth an error popup on
        # every keystroke: log it and show nothing.
        ls.window_log_message(
            types.LogMessageParams(
                type=types.MessageType.Warning,
                message=f"completion failed: {exc.code}: {exc.message}",
            )
        )
        return None
    current = ls.backend.documents.get(uri)
    if current is None or current.version != version:
        # The document changed while the model ran: positions computed on the
        # old text could be out of range in the new one. The editor asks again
        # for its newer text, so this answer is simply dropped.
        log.debug("completion for %s v%s dropped: the document changed", uri, version)
        return None
    return result, index, cursor


def inline_items(
    result: CompletionResult, index: LineIndex, cursor: int, encoding: Encoding
) -> list[types.InlineCompletionItem]:
    """The inline completion items of a result, for the text ``index`` was built on.

    An item carries a range only when it replaces text after the cursor (the
    rest of a line the model rewrote): clients then replace that range. A pure
    insertion has no range, so the client inserts at its own cursor and never
    meets an empty range at a position its newer text no longer has.
    """
    completion = result.completion
    if not completion.text:
        return []
    end = max(cursor, min(completion.replace_end, len(index.text)))
    if end == cursor:
        return [types.InlineCompletionItem(insert_text=completion.text)]
    return [
        types.InlineCompletionItem(
            insert_text=completion.text, range=to_range(index, cursor, end, encoding)
        )
    ]


def register(server: AiIdeLanguageServer) -> None:
    """Register the completion features."""

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: AiIdeLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        found = await _complete_at(ls, params.text_document.uri, params.position)
        if found is None:
            return None
        result, index, cursor = found
        return types.InlineCompletionList(items=inline_items(result, index, cursor, ls.encoding))

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", "(", " "], resolve_provider=False),
    )
    async def completion(
        ls: AiIdeLanguageServer, params: types.CompletionParams
    ) -> types.CompletionList | None:
        found = await _complete_at(ls, params.text_document.uri, params.position)
        if found is None:
            return None
        result, index, cursor = found
        completion = result.completion
        # isIncomplete: the client asks again as the user types, so each
        # keystroke gets a fresh model suggestion rather than client filtering.
        if not completion.text:
            return types.CompletionList(is_incomplete=True, items=[])
        start = word_start(index.text, cursor)
        new_text = index.text[start:cursor] + completion.text
        first_line = completion.text.strip().splitlines()[0] if completion.text.strip() else ""
        item = types.CompletionItem(
            label=(index.text[start:cursor] + first_line)[:80] or completion.text[:80],
            kind=types.CompletionItemKind.Snippet,
            detail=f"{result.model_id} · confidence {completion.confidence:.2f}",
            documentation=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=f"```\n{completion.text}\n```"
            ),
            filter_text=new_text,
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(
                range=to_range(index, start, completion.replace_end, ls.encoding),
                new_text=new_text,
            ),
            sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])
