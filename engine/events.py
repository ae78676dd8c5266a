"""Engine events: what happened, for webhooks, metrics and editors.

Publishers (registry, inference, jobs, batches) hand an :class:`EngineEvent`
to the :class:`EventBus`; sinks (the webhook outbox, say) receive it. A
publisher that changes stored state passes its open SQLite transaction, so a
sink that writes to the same database commits together with the change.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "model_loaded",
    "model_unloaded",
    "model_load_failed",
    "inference_completed",
    "error_occurred",
    "job_completed",
    "batch_completed",
)


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


EventSinkFn = Callable[[EngineEvent, sqlite3.Connection | None], None]


class EventBus:
    """Fan-out of engine events to registered sinks; thread-safe."""

    def __init__(self) -> None:
        self._sinks: list[EventSinkFn] = []
        self._lock = threading.Lock()

    def subscribe(self, sink: EventSinkFn) -> None:
        """Receive every event (called on the publisher's thread)."""
        with self._lock:
            self._sinks.append(sink)

    def publish(self, event: EngineEvent, tx: sqlite3.Connection | None = None) -> None:
        """Deliver an event to every sink.

        With ``tx`` a failing sink raises, so the caller's transaction rolls
        back and no state change commits without its event; without one,
        sink failures are logged and the others still run.
        """
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            if tx is not None:
                sink(event, tx)
                continue
            try:
                sink(event, None)
            except Exception:
                log.exception("event sink failed for %s", event.type)
