"""The pygls language server factory."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pygls.lsp.server import LanguageServer

from engine.config import Settings
from engine.engine import Engine
from lsp_server.config import LspConfig
from lsp_server.convert import encoding_of
from lsp_server.model_status import ModelStatusReporter
from lsp_server.positions import Encoding
from lsp_server.protocol import AiIdeProtocol


def package_version() -> str:
    """The installed version of ai-ide."""
    try:
        return version("ai-ide")
    except PackageNotFoundError:
        return "0.0.0"


class AiIdeLanguageServer(LanguageServer):
    """A language server bound to one engine."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__(name="ai-ide", version=package_version(), protocol_cls=AiIdeProtocol)
        self.engine = engine
        self.settings = settings
        self.config = LspConfig(model=settings.completion.model)
        self.status = ModelStatusReporter(self)

    @property
    def encoding(self) -> Encoding:
        """The position encoding negotiated with the client."""
        return encoding_of(self.workspace.position_encoding)


def create_server(engine: Engine, settings: Settings) -> AiIdeLanguageServer:
    """A language server with every feature registered, over ``engine``."""
    from lsp_server.features import (
        code_actions,
        commands,
        completion,
        documents,
        lifecycle,
        selection,
    )

    server = AiIdeLanguageServer(engine, settings)
    for feature in (lifecycle, documents, completion, selection, code_actions, commands):
        feature.register(server)
    return server
