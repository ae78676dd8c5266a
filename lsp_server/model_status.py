"""Model status for editors: ``ai-ide/modelStatus`` notifications and ``$/progress``.

Also the "thinking…" progress shown while a completion takes long.

Registry events arrive on the registry's threads; everything sent to the
client hops onto the event loop first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from engine.models.registry import RegistryEvent

if TYPE_CHECKING:
    from lsp_server.server import AiIdeLanguageServer

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "ai-ide/modelStatus"


class ModelStatusReporter:
    """Forwards model status changes and load progress to the client."""

    def __init__(self, server: AiIdeLanguageServer) -> None:
        self._server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tokens: dict[str, str] = {}  # model id -> progress token

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start forwarding (called once the client connection is up)."""
        self._loop = loop
        self._server.backend.add_listener(self.on_event)

    def detach(self) -> None:
        """Stop forwarding."""
        self._server.backend.remove_listener(self.on_event)

    def on_event(self, event: RegistryEvent) -> None:
        """Registry listener: may run on any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._deliver, event)

    def _supports_progress(self) -> bool:
        window = self._server.client_capabilities.window
        return bool(window and window.work_done_progress)

    def _deliver(self, event: RegistryEvent) -> None:
        params: dict[str, Any] = {
            "model_id": event.model_id,
            "status": event.status,
            "progress": round(
                event.progress
                if event.kind == "progress"
                else (1.0 if event.status == "loaded" else 0.0),
                3,
            ),
        }
        if event.error:
            params["error"] = event.error
        self._server.protocol.notify(STATUS_NOTIFICATION, params)
        if self._supports_progress():
            self._progress(event)
        if event.kind == "status" and event.status == "error":
            self._server.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Error,
                    message=f"ai-ide: model '{event.model_id}' failed to load: {event.error}",
                )
            )
            self._server.window_log_message(
                types.LogMessageParams(
                    type=types.MessageType.Error,
                    message=f"model {event.model_id} load failure: {event.error}",
                )
            )

    def _progress(self, event: RegistryEvent) -> None:
        progress = self._server.work_done_progress
        token = self._tokens.get(event.model_id)
        if event.status == "loading" and token is None:
            token = f"ai-ide-load-{event.model_id}-{uuid.uuid4().hex[:8]}"
            self._tokens[event.model_id] = token
            title = f"Loading {event.model_id}"

            def begin(_: object = None) -> None:
                progress.begin(
                    token,
                    types.WorkDoneProgressBegin(title=title, percentage=0, cancellable=False),
                )

            progress.create(token, callback=begin)
            return
        if token is None:
            return
        if event.kind == "progress":
            progress.report(
                token, types.WorkDoneProgressReport(percentage=int(event.progress * 100))
            )
        elif event.status != "loading":
            del self._tokens[event.model_id]
            message = "loaded" if event.status == "loaded" else f"failed: {event.error}"
            progress.end(token, types.WorkDoneProgressEnd(message=message))


THINKING_TITLE = "ai-ide: thinking…"
THINKING_TOKEN_PREFIX = "ai-ide-thinking-"
DEFAULT_THINKING_DELAY_S = 1.0


class ThinkingIndicator:
    """``$/progress`` "ai-ide: thinking…" while completions run longer than a delay.

    Ghost text can take seconds on a busy machine; without a sign of life the
    editor looks broken. One progress covers overlapping completions (each
    keystroke supersedes the last): it begins once a completion has run for
    ``delay_s`` and ends when none is running.
    """

    def __init__(self, server: AiIdeLanguageServer, delay_s: float = DEFAULT_THINKING_DELAY_S):
        self._server = server
        self.delay_s = delay_s
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._shown = False

    @property
    def shown(self) -> bool:
        """Whether a "thinking" progress is open on the client."""
        return self._shown

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Wrap one completion: counts it as running until the block exits."""
        self._started()
        try:
            yield
        finally:
            self._finished()

    def _started(self) -> None:
        self._running += 1
        self._idle.clear()
        if self._running == 1:
            self._arm()

    def _arm(self) -> None:
        if not self._shown and self._timer is None and self._supported():
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.delay_s, self._show)

    def _finished(self) -> None:
        self._running = max(0, self._running - 1)
        if self._running == 0:
            self._idle.set()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _supported(self) -> bool:
        window = self._server.client_capabilities.window
        return bool(window and window.work_done_progress)

    def _show(self) -> None:
        self._timer = None
        if self._running and not self._shown:
            self._shown = True
            self._server.spawn(self._progress())

    async def _progress(self) -> None:
        progress = self._server.work_done_progress
        token = f"{THINKING_TOKEN_PREFIX}{uuid.uuid4().hex[:8]}"
        try:
            try:
                await progress.create_async(token)
            except Exception as exc:  # a client that refuses the token just gets no progress
                log.debug("window/workDoneProgress/create failed: %s", exc)
                return
            progress.begin(
                token, types.WorkDoneProgressBegin(title=THINKING_TITLE, cancellable=False)
            )
            await self._idle.wait()
            progress.end(token, types.WorkDoneProgressEnd())
        finally:
            self._shown = False
            if self._running:
                # Completions started while the last progress was ending.
                self._arm()
