"""The last few hundred inferences, kept in memory for the dashboard's live view.

A sink on the engine's record bus (:class:`engine.events.InferenceRecord`):
it runs on the publisher's thread, often the event loop, so it only appends
to a bounded deque. Records keep figures only, and the model's text is
dropped before it is stored, unless the user turned ``http.dashboard_show_code``
on: by default the live view cannot leak what a user typed or was suggested.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace

from engine.events import EventBus, InferenceRecord

DEFAULT_CAPACITY = 500


class RecentRequests:
    """A bounded, thread-safe log of the latest inference records (newest last)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, keep_output: bool = False) -> None:
        self.capacity = capacity
        self.keep_output = keep_output
        self._records: deque[InferenceRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._bus: EventBus[InferenceRecord] | None = None

    def attach(self, bus: EventBus[InferenceRecord]) -> None:
        """Start keeping the records ``bus`` publishes."""
        self._bus = bus
        bus.subscribe(self.add)

    def detach(self) -> None:
        """Stop listening (the app is shutting down)."""
        if self._bus is not None:
            self._bus.unsubscribe(self.add)
            self._bus = None

    def add(self, record: InferenceRecord) -> None:
        """Keep one record, dropping the oldest when full."""
        if not self.keep_output and record.output:
            record = replace(record, output="")
        with self._lock:
            self._records.append(record)

    def latest(self, limit: int) -> list[InferenceRecord]:
        """Up to ``limit`` records, newest first."""
        with self._lock:
            records = list(self._records)
        return records[::-1][:limit]
