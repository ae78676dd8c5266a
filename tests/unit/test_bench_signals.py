"""A benchmark stopped with SIGTERM still runs its clean-up (its llama-servers end)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, time
from bench.peers.llama_server import exit_on_sigterm
with exit_on_sigterm():
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:
        print("cleaned up", flush=True)
"""


def test_sigterm_runs_the_finally_blocks() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    assert "cleaned up" in rest
    assert process.returncode == 128 + signal.SIGTERM
