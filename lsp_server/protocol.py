"""The JSON-RPC protocol class: pygls's, preferring UTF-8 positions when offered."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pygls.protocol import LanguageServerProtocol, lsp_method

log = logging.getLogger(__name__)

MsgId = int | str


class AiIdeProtocol(LanguageServerProtocol):
    """Chooses UTF-8 position encoding whenever the client offers it.

    UTF-8 offsets are what tree-sitter uses, so no conversion work is needed;
    otherwise the LSP default, UTF-16, applies. Requests that end cancelled
    are answered without pygls's ERROR log and traceback.
    """

    def _send_handler_result(self, future: Any, *, msg_id: MsgId) -> None:
        """Answer a cancelled or superseded request quietly; anything else as pygls does.

        A request superseded by a newer one for the same document, or cancelled
        by the client, is routine on every keystroke: pygls would log each one
        as an ERROR with a traceback, which editors show in their server logs.
        """
        error = _cancellation(future)
        if error is None:
            super()._send_handler_result(future, msg_id=msg_id)
            return
        self._request_futures.pop(msg_id, None)
        log.debug("request %s cancelled: %s", msg_id, error.message)
        self._send_response(msg_id, error=error.to_response_error())

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        """Reorder the client's offered encodings, then initialize as usual."""
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            offered = list(general.position_encodings)
            if types.PositionEncodingKind.Utf8 in offered:
                offered.remove(types.PositionEncodingKind.Utf8)
                general.position_encodings = [types.PositionEncodingKind.Utf8, *offered]
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        return result

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Apply a change as pygls does, unless the document was never opened.

        pygls's own copy of the document raised ``KeyError`` then, which it
        reports as an error popup ("Error in server"); the change has nothing
        to apply to, and the document store ignores it too.
        """
        if unquote(params.text_document.uri) not in self.workspace.text_documents:
            log.warning("didChange for %s, which is not open: ignored", params.text_document.uri)
            return
        yield from super().lsp_text_document__did_change(params)


def _cancellation(future: Any) -> JsonRpcRequestCancelled | None:
    """The cancellation error a finished handler future ended with, if that is how it ended.

    ``future`` is an asyncio or a thread-pool future (pygls runs both kinds);
    one cancelled outright is left to pygls, which answers it without logging.
    """
    if future.cancelled():
        return None
    exc = future.exception()
    return exc if isinstance(exc, JsonRpcRequestCancelled) else None
