"""Running a language's own checker (compiler or vetter) on code, in a throwaway directory.

A checker runs only when its tool is installed, with a time limit, never
through a shell, and its failure is a check result, never an exception. Its
messages are stripped of the temporary directory so no local path leaks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_DETAIL_LIMIT = 300
_JAVA_PUBLIC_TYPE = re.compile(
    r"\bpublic\s+(?:(?:final|abstract|sealed|non-sealed|strictfp)\s+)*"
    r"(?:class|interface|enum|record)\s+([A-Za-z_$][\w$]*)"
)
_JAVA_ANY_TYPE = re.compile(r"\b(?:class|interface|enum|record)\s+[A-Za-z_$][\w$]*")
_ES_MODULE = re.compile(r"^\s*(?:import|export)\b", re.MULTILINE)


@dataclass(frozen=True)
class CheckerOutcome:
    """``passed`` is ``None`` when the checker could not give a verdict."""

    tool: str
    passed: bool | None
    detail: str


@dataclass(frozen=True)
class _Invocation:
    tool: str
    file_name: str
    argv: list[str]


def checker_tool(language: str) -> str:
    """The name of the checker used for a language (for messages)."""
    return {
        "python": "py_compile",
        "rust": "rustc",
        "go": "go vet",
        "typescript": "tsc",
        "tsx": "tsc",
        "javascript": "node --check",
        "java": "javac",
    }.get(language, "checker")


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


def _invocation(code: str, language: str, directory: str) -> _Invocation | CheckerOutcome:
    tool = checker_tool(language)
    if language == "python":
        return _Invocation(
            tool, "snippet.py", [sys.executable, "-I", "-m", "py_compile", "snippet.py"]
        )
    if language == "rust":
        argv = ["rustc", "--edition", "2021", "--crate-type", "lib", "--emit=metadata"]
        argv += ["-A", "warnings", "--out-dir", directory, "snippet.rs"]
        return _Invocation(tool, "snippet.rs", argv)
    if language == "go":
        if not re.search(r"^\s*package\s+\w+", code, re.MULTILINE):
            return CheckerOutcome(tool, None, "not a complete Go file (no package clause)")
        return _Invocation(tool, "snippet.go", ["go", "vet", "snippet.go"])
    if language in ("typescript", "tsx"):
        name = "snippet.tsx" if language == "tsx" else "snippet.ts"
        argv = ["tsc", "--noEmit", "--pretty", "false", "--skipLibCheck", "--target", "es2020"]
        if language == "tsx":
            argv += ["--jsx", "preserve"]
        return _Invocation(tool, name, [*argv, name])
    if language == "javascript":
        name = "snippet.mjs" if _ES_MODULE.search(code) else "snippet.js"
        return _Invocation(tool, name, ["node", "--check", name])
    if language == "java":
        if not _JAVA_ANY_TYPE.search(code):
            return CheckerOutcome(tool, None, "not a complete Java compilation unit (no class)")
        match = _JAVA_PUBLIC_TYPE.search(code)
        name = f"{match.group(1)}.java" if match else "Snippet.java"
        argv = ["javac", "-d", str(Path(directory, "classes")), "-proc:none", "-nowarn", name]
        return _Invocation(tool, name, argv)
    return CheckerOutcome(tool, None, f"no checker for {language}")


def _first_error(output: str, directory: str) -> str:
    cleaned = output.replace(directory + os.sep, "").replace(directory, "")
    lines = [line.strip() for line in cleaned.splitlines() if line.strip()]
    chosen = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
    chosen = chosen or "failed without a message"
    return chosen if len(chosen) <= _DETAIL_LIMIT else chosen[: _DETAIL_LIMIT - 1] + "…"
