"""The loop-lag monitor counts stalls and logs the stack of what blocked the loop."""

from __future__ import annotations

import asyncio
import logging
import selectors
import sys
import threading
import time

import pytest

from services.loop_monitor import LoopLagMonitor, waiting_for_io


def block_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # what a lock held during tokenization looks like to the loop


async def test_a_blocked_loop_is_counted_once_with_its_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = LoopLagMonitor(threshold_seconds=0.1, interval_seconds=0.01)
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        before = monitor.figures().stalls  # a busy machine may already have delayed it
        with caplog.at_level(logging.WARNING, logger="services.loop_monitor"):
            block_the_loop_for(0.4)
            await asyncio.sleep(0.1)
        figures = monitor.figures()
        assert figures.stalls - before >= 1
        assert figures.max_lag_ms >= 300
        assert "block_the_loop_for" in caplog.text
    finally:
        await monitor.stop()


def idle_while_running(target: object) -> bool:
    """Whether a thread running ``target`` is, midway, found waiting for I/O."""
    ready = threading.Event()

    def run() -> None:
        ready.set()
        target()  # type: ignore[operator]

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait()
    time.sleep(0.1)  # let it reach its wait
    assert thread.ident is not None
    found = waiting_for_io(sys._current_frames().get(thread.ident))
    thread.join()
    return found


def test_a_loop_waiting_in_its_selector_is_idle_and_code_that_sleeps_is_not() -> None:
    selector = selectors.DefaultSelector()
    try:
        assert idle_while_running(lambda: selector.select(timeout=0.4))
    finally:
        selector.close()
    assert not idle_while_running(lambda: block_the_loop_for(0.4))
    assert not waiting_for_io(None)
