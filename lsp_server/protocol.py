"""The JSON-RPC protocol class: pygls's, preferring UTF-8 positions when offered."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method


class AiIdeProtocol(LanguageServerProtocol):
    """Chooses UTF-8 position encoding whenever the client offers it.

    UTF-8 offsets are what tree-sitter uses, so no conversion work is needed;
    otherwise the LSP default, UTF-16, applies.
    """

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
