"""Run a candidate program against its tests in a sandboxed subprocess.

Each program runs in a fresh ``python -I`` (isolated mode: no user site, no
``PYTHON*`` variables) in a temporary directory that is removed afterwards,
with CPU time, address space, file size and process count limited through
``resource.setrlimit`` in the child, a wall-clock timeout, and its own process
group so that a timeout kills whatever it started. This is containment for
model-written code, not a security boundary: run the benchmark as an
unprivileged user where that matters.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    processes: int = 64


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``passed`` only when the program exited 0 in time."""

    passed: bool
    status: str  # "passed", "failed", "timeout"
    detail: str


def _limiter(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()  # own process group: a timeout kills the children too
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # RLIMIT_NPROC counts the user's processes system-wide: only lower it.
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft == resource.RLIM_INFINITY or soft > limits.processes:
            current = len(os.listdir("/proc")) if os.path.isdir("/proc") else 0
            cap = max(limits.processes + current, limits.processes)
            if hard == resource.RLIM_INFINITY or cap <= hard:
                resource.setrlimit(resource.RLIMIT_NPROC, (cap, hard))

    return apply


def run_python(program: str, limits: Limits | None = None) -> Outcome:
    """Run ``program`` as a Python script under ``limits``; never raises for its behaviour."""
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="quality-") as directory:
        script = Path(directory) / "candidate.py"
        script.write_text(program, encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": directory, "TMPDIR": directory, "LANG": "C.UTF-8"}
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", str(script)],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_limiter(limits),  # noqa: PLW1509 - no threads start before exec
        )
        try:
            _, stderr = process.communicate(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return Outcome(False, "timeout", f"over {limits.wall_seconds:g} s")
    if process.returncode == 0:
        return Outcome(True, "passed", "")
    tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return Outcome(False, "failed", f"exit {process.returncode}: {tail[0][:200]}")
