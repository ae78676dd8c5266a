"""An event-loop lag monitor: counts stalls and logs what the loop was doing.

Both faces share one asyncio loop, so anything that blocks it (a lock held
during tokenization, file I/O, a slow sink) delays every editor and every
REST caller at once. A heartbeat task records when the loop last ran; a
watchdog thread notices a heartbeat older than the threshold, takes the loop
thread's stack at that moment (what is blocking it) and logs it once per
stall. Counts and the longest lag are exported as metrics. A loop found
waiting in its selector was not blocked by code: the process got no CPU (a
busy machine) or another thread held the GIL, and the log says that instead
of printing the selector's stack as the culprit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

_STACK_FRAMES = 12
_STACK_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class LoopLag:
    """Measured figures since the monitor started."""

    stalls: int
    max_lag_ms: float
    last_lag_ms: float


def waiting_for_io(frame: FrameType | None) -> bool:
    """Whether ``frame`` (a thread's innermost) is a selector's wait: an idle event loop."""
    return (
        frame is not None
        and frame.f_code.co_name in ("select", "poll")
        and frame.f_code.co_filename.endswith("selectors.py")
    )


class LoopLagMonitor:
    """Heartbeat on the loop plus a watchdog thread beside it."""

    def __init__(self, threshold_seconds: float = 0.1, interval_seconds: float = 0.02) -> None:
        self._threshold = threshold_seconds
        self._interval = interval_seconds
        self._beat = time.monotonic()
        self._lock = threading.Lock()
        self._stalls = 0
        self._max_lag = 0.0
        self._last_lag = 0.0
        self._in_stall = False
        self._last_stack = -_STACK_EVERY_SECONDS
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._watchdog: threading.Thread | None = None
        self._stop = threading.Event()

    def figures(self) -> LoopLag:
        """Stalls counted, the longest and the latest lag (milliseconds)."""
        with self._lock:
            return LoopLag(self._stalls, self._max_lag * 1000.0, self._last_lag * 1000.0)

    def start(self) -> None:
        """Start on the running loop (idempotent)."""
        if self._task is not None:
            return
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._heartbeat(), name="loop-lag")
        self._watchdog = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._watchdog.start()

    async def stop(self) -> None:
        """Stop the heartbeat and the watchdog."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
        if self._watchdog is not None:
            self._watchdog.join(timeout=2)
            self._watchdog = None

    async def _heartbeat(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self._interval)
            now = time.monotonic()
            lag = max(0.0, now - before - self._interval)
            with self._lock:
                self._beat = now
                self._last_lag = lag
                self._max_lag = max(self._max_lag, lag)
                # The watchdog counts a stall while it lasts; count it here if it missed it.
                if lag >= self._threshold and not self._in_stall:
                    self._stalls += 1
                    log.warning("event loop stalled for %.0f ms", lag * 1000.0)
                self._in_stall = False

    def _watch(self) -> None:
        while not self._stop.wait(self._threshold / 2):
            with self._lock:
                stalled = time.monotonic() - self._beat - self._interval
                if stalled < self._threshold or self._in_stall:
                    continue
                self._in_stall = True
                self._stalls += 1
            # The innermost frames say what blocks the loop; the full stack at
            # most once a minute, so that logging stalls cannot flood stderr.
            now = time.monotonic()
            if now - self._last_stack < _STACK_EVERY_SECONDS:
                log.warning("event loop blocked for over %.0f ms", stalled * 1000.0)
                continue
            frame = sys._current_frames().get(self._loop_thread or -1)
            if waiting_for_io(frame):
                # Nothing on the loop runs; its wake-up came late. Keep the
                # once-a-minute stack for a stall that code causes.
                log.warning(
                    "event loop late by %.0f ms while idle: the process got no CPU,"
                    " or another thread held the GIL",
                    stalled * 1000.0,
                )
                continue
            self._last_stack = now
            stack = traceback.format_stack(frame)[-_STACK_FRAMES:] if frame is not None else []
            log.warning(
                "event loop blocked for over %.0f ms; it is running:\n%s",
                stalled * 1000.0,
                "".join(stack) or "?",
            )
