"""initialize: read the editor's settings."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.config import parse_config
from lsp_server.server import AiIdeLanguageServer


def register(server: AiIdeLanguageServer) -> None:
    """Register lifecycle handlers."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: AiIdeLanguageServer, params: types.InitializeParams) -> None:
        config, problem = parse_config(params.initialization_options, ls.config)
        ls.config = config
        if problem:
            ls.window_log_message(
                types.LogMessageParams(type=types.MessageType.Warning, message=problem)
            )
