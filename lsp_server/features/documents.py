"""Document sync: keep the engine's documents and syntax trees current."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.convert import to_offsets
from lsp_server.server import AiIdeLanguageServer


def register(server: AiIdeLanguageServer) -> None:
    """Register didOpen/didChange/didClose."""

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: AiIdeLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.forget_index(doc.uri)
        ls.backend.documents.open(doc.uri, doc.text, doc.version, doc.language_id)
        ls.backend.context_changed()

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
                index = ls.line_index(uri, current.text)
                start, end = to_offsets(index, change.range, ls.encoding)
                edited = store.edit(uri, start, end, change.text, version)
                ls.index_edited(uri, edited.text, start, end, change.text)
            else:
                ls.forget_index(uri)
                store.replace(uri, change.text, version)
        ls.backend.context_changed()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: AiIdeLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget_index(params.text_document.uri)
        ls.backend.documents.close(params.text_document.uri)
