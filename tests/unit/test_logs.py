"""Logging never blocks the server, even when nobody reads its stderr."""

from __future__ import annotations

import logging
import os
import sys
import threading

import pytest

from lsp_server.logs import configure_logging


def test_a_full_stderr_pipe_drops_records_instead_of_blocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()  # nobody reads: the pipe fills after 64 KiB
    stream = os.fdopen(write_end, "w", buffering=1)
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    handler = configure_logging("warning", capacity=100, force=True)
    assert handler is not None
    try:
        done = threading.Event()

        def flood() -> None:
            for index in range(5000):
                logging.getLogger("flood").warning("record %d %s", index, "x" * 1000)
            done.set()

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        thread.join(timeout=60)
        assert done.is_set(), "logging blocked on a full stderr pipe"
        assert handler.dropped > 0
    finally:
        root.removeHandler(handler)
        for old in saved_handlers:
            root.addHandler(old)
        root.setLevel(saved_level)
        os.close(read_end)  # the writer's blocked write now fails, quietly, and it moves on
