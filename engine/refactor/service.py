"""The refactoring entry points: validate, plan candidates, check them, pick the result.

``confidence``: when a model's output shaped the accepted candidate (a name or a
rewrite), it is the model's confidence (exp of the mean token log-probability)
times the safety score; when no model output was used, it is the safety score
alone, i.e. derived from the checks only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Final

from engine import languages
from engine.errors import InvalidRequestError, RefactorNotApplicableError, UnsupportedLanguageError
from engine.refactor.context import Candidate, RefactorContext
from engine.refactor.edits import ordered
from engine.refactor.extract_method import extraction_plan, plan_extract_method
from engine.refactor.extract_variable import find_expression, hoist_anchor, plan_extract_variable
from engine.refactor.model_port import TextGenerator
from engine.refactor.optimize import plan_optimize, target_function
from engine.refactor.rename import plan_rename, rename_target
from engine.refactor.safety import SafetyChecker, Verdict
from engine.refactor.schema import OPERATIONS, Alternative, RefactorRequest, RefactorResult
from engine.refactor.selection import normalize_selection, trim
from engine.syntax import MAX_TREE_DEPTH, SyntaxDocument

MAX_CODE_CHARS: Final = 1_000_000
_LONE_CR: Final = re.compile(r"\r(?!\n)")
MAX_CHECKER_TIMEOUT_S: Final = 120.0
MAX_ALTERNATIVES: Final = 5

Planner = Callable[[RefactorContext, TextGenerator | None], list[Candidate]]
_PLANNERS: Final[Mapping[str, Planner]] = MappingProxyType(
    {
        "extract_variable": plan_extract_variable,
        "extract_method": plan_extract_method,
        "rename": plan_rename,
        "optimize_performance": plan_optimize,
    }
)


def refactor(request: RefactorRequest, generator: TextGenerator | None) -> RefactorResult:
    """Perform one refactoring and return the first candidate that passes its checks.

    Raises ``InvalidRequestError`` for malformed requests, ``UnsupportedLanguageError``
    for languages without a grammar and ``RefactorNotApplicableError`` when the
    selection does not fit the operation or no candidate passes the safety checks.

    Code whose lines all end in a lone CR (classic Mac) is refactored as LF
    code (the same offsets: one character for one) and given back with CRs:
    the grammars do not end lines at a lone CR, Python and the editors do, so
    a rename found the declaration only.
    """
    if _LONE_CR.search(request.code) is None or "\n" in request.code:
        # LF and CRLF code; code mixing them with lone CRs (a stray CR, a
        # "\r\r\n" conversion artefact) is taken as it is, as the grammars see it.
        return _refactor(request, generator)
    as_lf = _refactor(replace(request, code=request.code.replace("\r", "\n")), generator)
    return _with_cr(as_lf, request.code)


def _with_cr(result: RefactorResult, original: str) -> RefactorResult:
    """``result`` of the LF form of ``original`` (lone-CR code), with its CRs back."""

    def cr(text: str) -> str:
        return text.replace("\n", "\r")

    return replace(
        result,
        original_code=original,
        refactored_code=cr(result.refactored_code),
        edits=[replace(edit, new_text=cr(edit.new_text)) for edit in result.edits],
        alternatives=[replace(a, code=cr(a.code)) for a in result.alternatives],
    )


def _refactor(request: RefactorRequest, generator: TextGenerator | None) -> RefactorResult:
    ctx = _context(request)
    candidates = _PLANNERS[request.operation](ctx, generator)
    checker = SafetyChecker(
        ctx, run_compiler=request.safety_checks, timeout_s=request.checker_timeout_s
    )
    accepted: list[tuple[Candidate, Verdict]] = []
    rejected: list[tuple[Candidate, Verdict]] = []
    for candidate in candidates:
        verdict = checker.evaluate(candidate)
        (accepted if verdict.accepted else rejected).append((candidate, verdict))
        if len(accepted) > request.max_alternatives:
            break
    if not accepted:
        raise _rejection(request.operation, rejected)
    primary, verdict = accepted[0]
    alternatives = [
        Alternative(
            type=request.operation,
            code=other.code,
            confidence=_confidence(candidate, other),
            safety_score=other.safety_score,
        )
        for candidate, other in accepted[1:]
    ]
    return RefactorResult(
        type=request.operation,
        original_code=request.code,
        refactored_code=verdict.code,
        edits=ordered(primary.edits),
        confidence=_confidence(primary, verdict),
        safety_score=verdict.safety_score,
        explanation=primary.explanation + " " + _check_summary(verdict),
        checks=verdict.checks,
        alternatives=alternatives,
    )


def applicable_operations(
    code: str,
    language: str,
    start: int,
    end: int,
    *,
    document: SyntaxDocument | None = None,
) -> list[str]:
    """Operations that fit a selection (cursor when ``start == end``), without a model.

    Cheap: no model call, no compiler run, and name resolution limited to the
    top-level item around the selection. Pass the editor's already parsed
    ``document`` (same text) to skip re-parsing. An unknown language yields ``[]``.
    ``optimize_performance`` is listed inside any function even though it needs
    a model when performed.
    """
    resolved = languages.resolve(language)
    if resolved is None or not code:
        return []
    if len(code) > MAX_CODE_CHARS:
        return []  # refactor() would refuse it
    if _LONE_CR.search(code) is not None and "\n" not in code:
        code = code.replace("\r", "\n")  # as refactor() sees it (same offsets)
    canonical = resolved.id
    selection = normalize_selection(code, start, end)
    if document is None or document.text != code or document.language != canonical:
        document = SyntaxDocument(code, canonical)
    if document.max_depth() > MAX_TREE_DEPTH:
        return []  # refactor() would refuse it (and walking its tree is slow)
    ctx = RefactorContext(
        RefactorRequest(code=code, language=canonical, operation="extract_variable"),
        document,
        selection,
    )
    probes: dict[str, Callable[[], object]] = {
        "extract_variable": lambda: hoist_anchor(ctx, find_expression(ctx)),
        "extract_method": lambda: extraction_plan(ctx),
        "rename": lambda: rename_target(ctx, quick=True),
        "optimize_performance": lambda: target_function(ctx),
    }
    found: list[str] = []
    for operation, probe in probes.items():
        try:
            probe()
        except RefactorNotApplicableError:
            continue
        found.append(operation)
    return found


def _context(request: RefactorRequest) -> RefactorContext:
    if request.operation not in OPERATIONS:
        raise InvalidRequestError(
            "operation",
            f"Unknown operation '{request.operation}'; use one of: {', '.join(OPERATIONS)}",
        )
    found = languages.resolve(request.language, request.file_path)
    if found is None:
        supported = languages.ids()
        raise UnsupportedLanguageError(
            f"No tree-sitter grammar for language '{request.language}'; "
            f"supported: {', '.join(supported)}",
            {"field": "context.language", "supported": list(supported)},
        )
    language = found.id
    _validate_code(request.code)
    timeout = request.checker_timeout_s
    if not (isinstance(timeout, int | float) and 0 < timeout <= MAX_CHECKER_TIMEOUT_S):
        raise InvalidRequestError(
            "checker_timeout_s",
            f"checker_timeout_s must be greater than 0 and at most {MAX_CHECKER_TIMEOUT_S:g}",
        )
    if not 0 <= request.max_alternatives <= MAX_ALTERNATIVES:
        raise InvalidRequestError(
            "max_alternatives", f"max_alternatives must be between 0 and {MAX_ALTERNATIVES}"
        )
    selection = normalize_selection(request.code, request.selection_start, request.selection_end)
    if selection is not None and selection[0] != selection[1]:
        start, end = trim(request.code, *selection)
        selection = (start, end) if start < end else (start, start)
    document = SyntaxDocument(request.code, language)
    depth = document.max_depth()
    if depth > MAX_TREE_DEPTH:
        raise InvalidRequestError(
            "code",
            f"the code's syntax tree is more than {MAX_TREE_DEPTH} levels deep "
            "(a chain of thousands of operators or nested brackets); refactoring it is refused",
            limit=MAX_TREE_DEPTH,
        )
    return RefactorContext(request, document, selection)


def _validate_code(code: str) -> None:
    if not code.strip():
        raise InvalidRequestError("code", "code is empty")
    if len(code) > MAX_CODE_CHARS:
        raise InvalidRequestError(
            "code", f"code is longer than {MAX_CODE_CHARS} characters", length=len(code)
        )
    if "\x00" in code:
        raise InvalidRequestError("code", "code contains NUL characters", offset=code.index("\x00"))
    try:
        code.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidRequestError(
            "code", "code contains an unpaired surrogate (invalid Unicode)", offset=error.start
        ) from None


def _confidence(candidate: Candidate, verdict: Verdict) -> float:
    model = candidate.model_confidence
    value = verdict.safety_score if model is None else model * verdict.safety_score
    return round(value, 3) if math.isfinite(value) else 0.0


def _check_summary(verdict: Verdict) -> str:
    passed = [c.name for c in verdict.checks if c.passed]
    unverified = [c for c in verdict.checks if c.passed is None]
    summary = f"Checks passed: {', '.join(passed) or 'none'}."
    if unverified:
        summary += " Not verified: " + "; ".join(f"{c.name} ({c.detail})" for c in unverified) + "."
    return summary


def _rejection(operation: str, rejected: list[tuple[Candidate, Verdict]]) -> Exception:
    failures = [
        f"{check.name}: {check.detail}"
        for _, verdict in rejected
        for check in verdict.checks
        if check.passed is False
    ]
    unique = list(dict.fromkeys(failures))
    return RefactorNotApplicableError(
        f"{operation} could not be done safely: " + ("; ".join(unique) or "no candidate"),
        {
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail}
                for c in (rejected[0][1].checks if rejected else [])
            ]
        },
    )
