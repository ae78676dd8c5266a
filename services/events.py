"""Events that accompany a change of stored state (a job or a batch finished).

A service that changes stored state publishes its event inside the same store
transaction, so a sink that writes to the same database (the webhook outbox)
commits together with the change: no state change without its event, and no
event without its change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Connection

from engine.events import EngineEvent

StateEventSink = Callable[[EngineEvent, Connection], None]


class StateEventBus:
    """Fan-out of state events to sinks that write in the publisher's transaction."""

    def __init__(self) -> None:
        self._sinks: list[StateEventSink] = []
        self._lock = threading.Lock()

    def subscribe(self, sink: StateEventSink) -> None:
        """Receive every state event, with the publisher's open transaction."""
        with self._lock:
            self._sinks.append(sink)

    def publish(self, event: EngineEvent, tx: Connection) -> None:
        """Deliver an event inside ``tx``; a failing sink raises, so ``tx`` rolls back."""
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            sink(event, tx)
