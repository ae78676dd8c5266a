"""Safety checks on a refactoring candidate, and the safety score they add up to.

Checks, with their weights in the score:

* ``syntax`` (0.35): the result re-parses without more ERROR/MISSING nodes than the original.
* ``free_identifiers`` (0.30): the top-level items the edit touches read the same
  names from outside as before (plus, for an extracted helper, the helper itself);
  for a model rewrite, it may drop names but add only predeclared ones.
* ``signature`` (0.15): functions whose signature the operation promises to keep keep it.
* ``compile`` (0.20): the language's own checker accepts the result. When the checker is
  not installed, times out, or also rejects the original code, it has no verdict.

``safety_score`` is the weighted mean of the checks listed, a passed check counting
1, a failed one 0 and one without a verdict 0.5 (unverified is neither safe nor
unsafe). A candidate with any failed check is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from tree_sitter import Node

from engine.refactor.checkers import CheckerOutcome, checker_tool, run_checker
from engine.refactor.context import Candidate, RefactorContext, signature_of
from engine.refactor.edits import apply_edits, new_ranges
from engine.refactor.schema import SafetyCheck
from engine.refactor.scopes import analyze
from engine.syntax import SyntaxDocument

WEIGHTS = MappingProxyType(
    {"syntax": 0.35, "free_identifiers": 0.30, "signature": 0.15, "compile": 0.20}
)
UNVERIFIED_CREDIT = 0.5
_WELL_KNOWN = frozenset({"self", "this", "super", "Self", "std", "core", "alloc", "crate"})


@dataclass(frozen=True)
class Verdict:
    """The checked candidate: its code, checks, score, and whether it may be offered."""

    code: str
    checks: list[SafetyCheck]
    safety_score: float
    accepted: bool


def safety_score(checks: list[SafetyCheck]) -> float:
    """Weighted mean of the checks (passed 1, unverified 0.5, failed 0)."""
    total = sum(WEIGHTS.get(c.name, 0.1) for c in checks)
    if total == 0:
        return 0.0
    earned = sum(
        WEIGHTS.get(c.name, 0.1)
        * (1.0 if c.passed else UNVERIFIED_CREDIT if c.passed is None else 0.0)
        for c in checks
    )
    return round(earned / total, 3)


def count_errors(root: Node) -> int:
    """ERROR and MISSING nodes in a tree (only subtrees that report errors are walked)."""
    if not root.has_error:
        return 0
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        stack.extend(c for c in node.children if c.has_error or c.is_missing)
    return count


class SafetyChecker:
    """Judges candidates of one request against the original code."""

    def __init__(self, ctx: RefactorContext, *, run_compiler: bool, timeout_s: float) -> None:
        self.ctx = ctx
        self.run_compiler = run_compiler
        self.timeout_s = timeout_s
        self.original_errors = count_errors(ctx.document.tree.root_node)
        self._original_outcome: CheckerOutcome | None = None

    def evaluate(self, candidate: Candidate) -> Verdict:
        """Apply the candidate's edits and run every check on the result."""
        ctx = self.ctx
        code = apply_edits(ctx.code, candidate.edits)
        result = SyntaxDocument(code, ctx.document.language)
        new_spans = [
            (result.byte_offset(start), result.byte_offset(end))
            for start, end in new_ranges(candidate.edits)
        ]
        new_items = _touched_items(result, new_spans)
        checks = [self._syntax(result), self._free_identifiers(candidate, result, new_items)]
        if candidate.signatures:
            checks.append(self._signatures(candidate, result, new_items))
        structural_ok = all(c.passed for c in checks)
        checks.append(self._compile(code, structural_ok))
        accepted = all(c.passed is not False for c in checks)
        return Verdict(code, checks, safety_score(checks), accepted)

    def _syntax(self, result: SyntaxDocument) -> SafetyCheck:
        errors = count_errors(result.tree.root_node)
        if errors <= self.original_errors:
            return SafetyCheck("syntax", True, "re-parsed with no new ERROR or MISSING nodes")
        added = errors - self.original_errors
        return SafetyCheck("syntax", False, f"re-parse found {added} new ERROR/MISSING node(s)")

    def _free_identifiers(
        self, candidate: Candidate, result: SyntaxDocument, new_items: list[Node]
    ) -> SafetyCheck:
        ctx = self.ctx
        original = ctx.document
        old_spans = [
            (original.byte_offset(e.start), original.byte_offset(e.end)) for e in candidate.edits
        ]
        old_items = _touched_items(original, old_spans)
        old_free = ctx.analysis(old_items).free_names(_spans(old_items))
        new_free = analyze(new_items, ctx.rules, result.data).free_names(_spans(new_items))
        added = new_free - old_free - candidate.allowed_new_free
        lost = old_free - new_free
        if candidate.free_mode == "no_new_unresolved":
            added -= ctx.spec.avoid | _WELL_KNOWN
            lost = set()
        if not added and not lost:
            names = ", ".join(sorted(old_free)) or "none"
            return SafetyCheck("free_identifiers", True, f"free names preserved ({names})")
        parts = []
        if added:
            parts.append("new: " + ", ".join(sorted(added)))
        if lost:
            parts.append("lost: " + ", ".join(sorted(lost)))
        return SafetyCheck(
            "free_identifiers", False, "free names changed (" + "; ".join(parts) + ")"
        )

    def _signatures(
        self, candidate: Candidate, result: SyntaxDocument, new_items: list[Node]
    ) -> SafetyCheck:
        wanted = {s.name for s in candidate.signatures}
        found = set()
        stack = list(new_items)
        while stack:
            node = stack.pop()
            stack.extend(node.named_children)
            if self.ctx.spec.is_function(node):
                signature = signature_of(result, node)
                if signature is not None and signature.name in wanted:
                    found.add(signature)
        missing = [s for s in candidate.signatures if s not in found]
        if not missing:
            names = ", ".join(sorted(wanted))
            return SafetyCheck("signature", True, f"signature of {names} unchanged")
        return SafetyCheck(
            "signature", False, "signature changed: " + "; ".join(s.header for s in missing)
        )

    def _compile(self, code: str, structural_ok: bool) -> SafetyCheck:
        tool = checker_tool(self.ctx.document.language)
        if not self.run_compiler:
            return SafetyCheck("compile", None, f"{tool} skipped: safety_checks is false")
        if not structural_ok:
            return SafetyCheck("compile", None, f"{tool} skipped: structural checks failed")
        language = self.ctx.document.language
        outcome = run_checker(code, language, self.timeout_s)
        if outcome.passed is False:
            original = self._original(language)
            if original.passed is False:
                return SafetyCheck(
                    "compile",
                    None,
                    f"inconclusive: the original code does not pass {tool} on its own either "
                    f"({original.detail})",
                )
        return SafetyCheck("compile", outcome.passed, outcome.detail)

    def _original(self, language: str) -> CheckerOutcome:
        if self._original_outcome is None:
            self._original_outcome = run_checker(self.ctx.code, language, self.timeout_s)
        return self._original_outcome


def _touched_items(document: SyntaxDocument, spans: list[tuple[int, int]]) -> list[Node]:
    """Top-level items that an edit overlaps or touches."""
    return [
        item
        for item in document.tree.root_node.named_children
        if any(item.start_byte <= end and start <= item.end_byte for start, end in spans)
    ]


def _spans(items: list[Node]) -> list[tuple[int, int]]:
    return [(item.start_byte, item.end_byte) for item in items]
