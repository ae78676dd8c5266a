"""The loop-lag monitor counts stalls and logs the stack of what blocked the loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from services.loop_monitor import LoopLagMonitor


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
