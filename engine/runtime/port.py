"""The one interface the registry and the engine use for a loaded model.

A local model's :class:`~engine.runtime.runner.RunnerClient` (a child process
or a thread) and a remote engine's
:class:`~engine.remote.runner.RemoteRunner` (llama-server, an
OpenAI-compatible server) both have it: requests go in with
:meth:`ModelRunner.submit`, their token, done and error events come out on
the request's sink, and cancellation is by request id. Nothing above the
registry knows which kind serves a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.errors import EngineError
from engine.runtime.messages import GenerationRequest
from engine.runtime.worker import ModelInfo

ExitListener = Callable[[str], None]


class ModelRunner(Protocol):
    """What serves one loaded model: start, submit, cancel, stop."""

    model_id: str
    info: ModelInfo | None
    # Called (from any thread) when the runner dies without being asked to.
    on_exit: ExitListener | None

    @property
    def pid(self) -> int | None:
        """The process that holds the model here; None when none of ours does."""
        ...

    def start(self, timeout: float | None = None) -> ModelInfo:
        """Make the model serve; block until it does or fails (an EngineError)."""
        ...

    def stop(self) -> None:
        """Stop serving: queued and running requests fail as unloaded."""
        ...

    def abandon(self) -> None:
        """Give up on the runner now (the server is shutting down)."""
        ...

    def submit(self, request: GenerationRequest) -> None:
        """Queue a request; its events arrive on ``request.sink``."""
        ...

    def cancel(self, request_id: str, reason: EngineError | None = None) -> None:
        """Stop a request (drop it from the queue, or interrupt it)."""
        ...

    @property
    def queue_length(self) -> int:
        """Requests waiting to run."""
        ...

    @property
    def queued_by_priority(self) -> tuple[int, ...]:
        """Requests waiting to run, per priority class (indexed by ``Priority``)."""
        ...

    @property
    def active_requests(self) -> int:
        """Requests running now."""
        ...
