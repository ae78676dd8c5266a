"""Document sync: keep the engine's documents and syntax trees current."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.convert import to_offset
from lsp_server.positions import LineIndex
from lsp_server.server import AiIdeLanguageServer


def register(server: AiIdeLanguageServer) -> None:
    """Register didOpen/didChange/didClose."""

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: AiIdeLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.backend.documents.open(doc.uri, doc.text, doc.version, doc.language_id)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: AiIdeLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        version = params.text_document.version
        store = ls.backend.documents
        if store.get(uri) is None:
            return
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                current = store.get(uri)
                assert current is not None
                index = LineIndex(current.text)
                start = to_offset(index, change.range.start, ls.encoding)
                end = to_offset(index, change.range.end, ls.encoding)
                store.edit(uri, start, max(start, end), change.text, version)
            else:
                store.replace(uri, change.text, version)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: AiIdeLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.backend.documents.close(params.text_document.uri)
