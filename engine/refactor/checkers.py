"""Running a language's own checker (compiler or vetter) on code, in a throwaway directory.

Which command checks a language is part of the language (``engine.languages``);
this module runs it. A checker runs only when its tool is installed, with a
time limit, never through a shell, and its failure is a check result, never an
exception. Its messages are stripped of the temporary directory so no local
path leaks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine import languages
from engine.languages.base import CheckerCommand

_DETAIL_LIMIT = 300


@dataclass(frozen=True)
class CheckerOutcome:
    """``passed`` is ``None`` when the checker could not give a verdict."""

    tool: str
    passed: bool | None
    detail: str


def checker_tool(language: str) -> str:
    """The name of the checker used for a language (for messages)."""
    found = languages.resolve(language)
    return found.checker.tool if found is not None else "checker"


def run_checker(code: str, language: str, timeout_s: float) -> CheckerOutcome:
    """Check ``code`` with the language's own tool; never raises."""
    tool = checker_tool(language)
    with tempfile.TemporaryDirectory(prefix="refactor-check-") as directory:
        invocation = _invocation(code, language, directory)
        if isinstance(invocation, CheckerOutcome):
            return invocation
        executable = shutil.which(invocation.argv[0])
        if executable is None:
            return CheckerOutcome(tool, None, f"{invocation.argv[0]} is not installed")
        path = Path(directory, invocation.file_name)
        path.write_text(code, encoding="utf-8", errors="surrogatepass")
        environment = {**os.environ, "LC_ALL": "C", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            completed = subprocess.run(
                [executable, *invocation.argv[1:]],
                cwd=directory,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
                env=environment,
            )
        except subprocess.TimeoutExpired:
            return CheckerOutcome(tool, None, f"{tool} did not finish within {timeout_s:g} s")
        except OSError as error:
            return CheckerOutcome(tool, None, f"{tool} could not be started ({error.strerror})")
        if completed.returncode == 0:
            return CheckerOutcome(tool, True, f"{tool} reported no errors")
        output = (completed.stderr + completed.stdout).decode("utf-8", "replace")
        return CheckerOutcome(tool, False, f"{tool}: {_first_error(output, directory)}")


def _invocation(code: str, language: str, directory: str) -> CheckerCommand | CheckerOutcome:
    found = languages.resolve(language)
    if found is None:
        return CheckerOutcome(checker_tool(language), None, f"no checker for {language}")
    planned = found.checker.plan(code, directory)
    if isinstance(planned, str):  # the code cannot be checked: no verdict, and why
        return CheckerOutcome(found.checker.tool, None, planned)
    return planned


def _first_error(output: str, directory: str) -> str:
    cleaned = output.replace(directory + os.sep, "").replace(directory, "")
    lines = [line.strip() for line in cleaned.splitlines() if line.strip()]
    chosen = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
    chosen = chosen or "failed without a message"
    return chosen if len(chosen) <= _DETAIL_LIMIT else chosen[: _DETAIL_LIMIT - 1] + "…"
