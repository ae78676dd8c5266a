"""Pure conversions between engine offsets/results and lsprotocol types."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.positions import Encoding, LineIndex


def encoding_of(kind: types.PositionEncodingKind | str | None) -> Encoding:
    """The negotiated position encoding as a codec name."""
    value = str(kind.value if isinstance(kind, types.PositionEncodingKind) else kind or "")
    if value == "utf-8":
        return "utf-8"
    if value == "utf-32":
        return "utf-32"
    return "utf-16"


def to_offset(index: LineIndex, position: types.Position, encoding: Encoding) -> int:
    """String offset of an LSP position (clamped)."""
    return index.offset(position.line, position.character, encoding)


def to_offsets(index: LineIndex, span: types.Range, encoding: Encoding) -> tuple[int, int]:
    """String offsets of an LSP range, in order (a range given end first is the same)."""
    first = to_offset(index, span.start, encoding)
    second = to_offset(index, span.end, encoding)
    return min(first, second), max(first, second)


def to_position(index: LineIndex, offset: int, encoding: Encoding) -> types.Position:
    """LSP position of a string offset."""
    line, character = index.position(offset, encoding)
    return types.Position(line=line, character=character)


def to_range(index: LineIndex, start: int, end: int, encoding: Encoding) -> types.Range:
    """LSP range of two string offsets."""
    return types.Range(
        start=to_position(index, start, encoding), end=to_position(index, end, encoding)
    )


def word_start(text: str, cursor: int) -> int:
    """Start of the identifier being typed at the cursor (the client filters on it)."""
    start = cursor
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return start


def versioned_edit(uri: str, version: int, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    """A workspace edit of one document that applies only to version ``version`` of it.

    ``documentChanges`` with the version the edits were computed on: an editor
    whose document is newer (the server missed a change, or the user typed
    while the model ran) refuses the edit rather than corrupting its text.
    """
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=version
                ),
                edits=list(edits),
            )
        ]
    )
