"""Engine events: what happened, for webhooks, metrics and editors.

The engine publishes two kinds of event on two buses: :class:`EngineEvent`
(model loaded, inference completed, ...), which services such as webhooks
turn into deliveries, and :class:`InferenceRecord` (one measured inference),
which the metrics service stores. Sinks run on the publisher's thread, often
the event loop, so they must only hand the event on, never do I/O.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

# The event types (``EngineEvent.type``) are listed once, in the wire contract
# (ai_ide.wire.webhooks.EVENT_TYPES); a test checks every published type is there.


def utc_timestamp() -> str:
    """Now, RFC 3339 UTC with a ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class EngineEvent:
    """Something that happened; ``owner`` is the caller it concerns (None: everyone)."""

    type: str
    data: dict[str, Any]
    owner: str | None = None
    id: str = field(default_factory=lambda: f"evt_{uuid.uuid4().hex}")
    timestamp: str = field(default_factory=utc_timestamp)


@dataclass(frozen=True)
class InferenceRecord:
    """One finished (or failed) inference, as measured."""

    model_id: str
    kind: str
    started_at: float  # Unix time
    duration_ms: float
    success: bool
    cached: bool
    tokens: int
    error_code: str | None = None
    # Who asked (None: the local editor), and the prompt's share read from the
    # KV cache: shown live (the dashboard), not stored with the record.
    caller: str | None = None
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    # The text the model produced (empty on failure). Only a consumer that
    # the user opted in keeps it (http.dashboard_show_code); the metrics
    # store never writes it.
    output: str = ""


E = TypeVar("E")


class EventBus(Generic[E]):
    """Fan-out of events to registered sinks; thread-safe; a failing sink is logged."""

    def __init__(self) -> None:
        self._sinks: list[Callable[[E], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, sink: Callable[[E], None]) -> None:
        """Receive every event (called on the publisher's thread)."""
        with self._lock:
            self._sinks.append(sink)

    def unsubscribe(self, sink: Callable[[E], None]) -> None:
        """Stop receiving events."""
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def publish(self, event: E) -> None:
        """Deliver an event to every sink; one sink's failure does not stop the others."""
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            try:
                sink(event)
            except Exception:
                log.exception("event sink failed for %r", event)
