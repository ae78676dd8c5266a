"""Request and result types of the refactoring engine (no behaviour here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

OPERATIONS: Final = ("extract_variable", "extract_method", "rename", "optimize_performance")
"""Operations :func:`engine.refactor.refactor` accepts, in the spec's spelling."""

DEFAULT_CHECKER_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class RefactorRequest:
    """One refactoring request; offsets are code points into ``code``.

    ``language`` may be a canonical name or an alias (``rs``, ``typescriptreact``);
    when it is empty, ``file_path``'s extension decides. ``safety_checks=False``
    skips the external compiler check only: the in-process structural checks
    always run, because choosing between candidate names relies on them.
    """

    code: str
    language: str
    operation: str
    selection_start: int | None = None
    selection_end: int | None = None
    new_name: str | None = None
    safety_checks: bool = True
    checker_timeout_s: float = DEFAULT_CHECKER_TIMEOUT_S
    file_path: str | None = None
    max_alternatives: int = 2


@dataclass(frozen=True)
class TextEdit:
    """Replace ``original_code[start:end]`` with ``new_text`` (code-point offsets)."""

    start: int
    end: int
    new_text: str


@dataclass(frozen=True)
class SafetyCheck:
    """One check on the result; ``passed`` is ``None`` when it could not run."""

    name: str
    passed: bool | None
    detail: str


@dataclass(frozen=True)
class Alternative:
    """Another valid variant of the refactoring (other name, other rewrite)."""

    type: str
    code: str
    confidence: float
    safety_score: float


@dataclass(frozen=True)
class RefactorResult:
    """The accepted refactoring, the checks it passed and the variants that also passed."""

    type: str
    original_code: str
    refactored_code: str
    edits: list[TextEdit]
    confidence: float
    safety_score: float
    explanation: str
    checks: list[SafetyCheck] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
