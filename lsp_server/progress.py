"""Progress of long script commands on stderr: a bar, plain lines, or nothing.

On a terminal a ``rich`` progress bar; when stderr is a pipe or a file (CI,
a log) one plain line each time the figure changes, so logs stay readable;
with ``--quiet`` nothing. stdout is left to the command's JSON answer.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Literal, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

ProgressMode = Literal["bar", "lines", "quiet"]


def progress_mode(quiet: bool, stream: TextIO | None = None) -> ProgressMode:
    """``quiet`` with --quiet, ``bar`` on a terminal, else ``lines``."""
    if quiet:
        return "quiet"
    target = stream if stream is not None else sys.stderr
    return "bar" if target.isatty() else "lines"


class ProgressReport:
    """Reports ``completed`` of ``total`` for one piece of work (a context manager)."""

    def __init__(
        self,
        description: str,
        total: int,
        mode: ProgressMode,
        *,
        stream: TextIO | None = None,
        unit: str = "",
    ) -> None:
        self.description = description
        self.total = total
        self.mode = mode
        self.unit = unit
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last: tuple[int, str] | None = None

    def __enter__(self) -> ProgressReport:
        if self.mode == "bar":
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=Console(file=self._stream, force_terminal=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, status="")
        return self

    def update(self, completed: int, status: str = "") -> None:
        """Now ``completed`` of ``total`` (``status``: a word such as running or loaded)."""
        completed = max(0, min(completed, self.total))
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=completed, status=status)
        elif self.mode == "lines" and (completed, status) != self._last:
            note = f" ({status})" if status else ""
            print(
                f"{self.description}: {completed}/{self.total}{self.unit}{note}",
                file=self._stream,
                flush=True,
            )
        self._last = (completed, status)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
