"""Logging that can never block the server.

Logs go to stderr, which belongs to whoever started the process: an editor
that does not read it lets the pipe fill, and a plain ``StreamHandler`` then
blocks the thread that logs, with the logging lock held, until every other
thread that logs (the event loop included) is stuck behind it. Here a log
call only puts the record on a bounded queue; one thread writes them out,
and when the queue is full the record is dropped and counted instead.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import threading

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler that drops (and counts) records when its queue is full."""

    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self._lock_dropped = threading.Lock()
        self.dropped = 0
        self.listener: logging.handlers.QueueListener | None = None

    def enqueue(self, record: logging.LogRecord) -> None:
        """Queue the record without waiting."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._lock_dropped:
                self.dropped += 1


class _QuietStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to stderr; when stderr is gone there is nobody left to tell, so no noise."""

    def handleError(self, record: logging.LogRecord) -> None:
        """Drop the record."""


def configure_logging(
    level: str, *, capacity: int = 10_000, force: bool = False
) -> DroppingQueueHandler | None:
    """Send every log record to stderr through a bounded queue and a writer thread.

    Like ``logging.basicConfig``, this does nothing when the root logger
    already has handlers (a host such as a test runner configured it) unless
    ``force`` is set. Returns the queue handler it installed, if any.
    """
    root = logging.getLogger()
    if root.handlers and not force:
        return None
    records: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=capacity)
    writer = _QuietStreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter(_FORMAT))
    handler = DroppingQueueHandler(records)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    listener = logging.handlers.QueueListener(records, writer, respect_handler_level=False)
    listener.start()  # a daemon thread: it may block on stderr, nothing waits for it
    handler.listener = listener
    return handler
