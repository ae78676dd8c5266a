"""Selection ranges from the syntax tree."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.convert import to_offset, to_range
from lsp_server.positions import LineIndex
from lsp_server.server import AiIdeLanguageServer


def register(server: AiIdeLanguageServer) -> None:
    """Register textDocument/selectionRange."""

    @server.feature(types.TEXT_DOCUMENT_SELECTION_RANGE)
    def selection_range(
        ls: AiIdeLanguageServer, params: types.SelectionRangeParams
    ) -> list[types.SelectionRange]:
        doc = ls.backend.documents.get(params.text_document.uri)
        text = doc.text if doc is not None else ""
        index = (
            ls.line_index(params.text_document.uri, text) if doc is not None else LineIndex(text)
        )
        results: list[types.SelectionRange] = []
        for position in params.positions:
            offset = to_offset(index, position, ls.encoding)
            spans = doc.syntax.selection_ranges(offset) if doc and doc.syntax else []
            if not spans:
                spans = [(offset, offset)]
            # Build the chain from the outermost range inwards.
            parent: types.SelectionRange | None = None
            for start, end in reversed(spans):
                parent = types.SelectionRange(
                    range=to_range(index, start, end, ls.encoding), parent=parent
                )
            assert parent is not None
            results.append(parent)
        return results
