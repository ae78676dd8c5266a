"""The pygls language server factory."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pygls.lsp.server import LanguageServer

from engine.config import Settings
from lsp_server.backend import Backend
from lsp_server.config import LspConfig
from lsp_server.convert import encoding_of
from lsp_server.model_status import ModelStatusReporter, ThinkingIndicator
from lsp_server.positions import Encoding, LineIndex
from lsp_server.protocol import AiIdeProtocol


def package_version() -> str:
    """The installed version of ai-ide."""
    try:
        return version("ai-ide")
    except PackageNotFoundError:
        return "0.0.0"


class AiIdeLanguageServer(LanguageServer):
    """A language server bound to one engine."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        super().__init__(name="ai-ide", version=package_version(), protocol_cls=AiIdeProtocol)
        self.backend = backend
        self.settings = settings
        self.config = LspConfig(model=settings.completion.model)
        self.status = ModelStatusReporter(self)
        self.thinking = ThinkingIndicator(self)
        # How a resolved refactoring reaches the editor: in the code action's
        # `edit` (LSP's usual way), or through the ai-ide.applyEdit command,
        # which sends workspace/applyEdit so that the server hears of a
        # refusal and explains it (editors ask with refactorEditsByCommand).
        self.refactor_edits_by_command = False
        # Strong references to fire-and-forget tasks (asyncio keeps only weak ones).
        self._background: set[asyncio.Task[None]] = set()
        # Line indexes of open documents, updated per edit (never rebuilt per keystroke).
        self._line_indexes: dict[str, LineIndex] = {}

    def line_index(self, uri: str, text: str) -> LineIndex:
        """The line index of ``text``, the current text of the document ``uri``."""
        cached = self._line_indexes.get(uri)
        if cached is None or (cached.text is not text and cached.text != text):
            cached = self._line_indexes[uri] = LineIndex(text)
        return cached

    def index_edited(self, uri: str, text: str, start: int, end: int, inserted: str) -> None:
        """Record an edit of ``uri``: its index follows, in time proportional to the edit."""
        cached = self._line_indexes.get(uri)
        if cached is not None:
            self._line_indexes[uri] = cached.edited(text, start, end, inserted)

    def forget_index(self, uri: str) -> None:
        """A closed or replaced document's index goes."""
        self._line_indexes.pop(uri, None)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping it alive until it finishes."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def encoding(self) -> Encoding:
        """The position encoding negotiated with the client."""
        return encoding_of(self.workspace.position_encoding)


def create_server(backend: Backend, settings: Settings) -> AiIdeLanguageServer:
    """A language server with every feature registered, over ``backend``.

    The backend is the in-process engine (:class:`~lsp_server.backend.LocalBackend`)
    or another ai-ide serving the sidecar port.
    """
    from lsp_server.features import (
        code_actions,
        commands,
        completion,
        documents,
        lifecycle,
        selection,
    )

    server = AiIdeLanguageServer(backend, settings)
    for feature in (lifecycle, documents, completion, selection, code_actions, commands):
        feature.register(server)
    return server
