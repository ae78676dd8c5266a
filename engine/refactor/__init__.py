"""Syntax-aware refactoring with safety checks: extract variable/method, rename, optimize.

tree-sitter finds what a selection means and where edits go; a model (optional,
through :class:`TextGenerator`) proposes names and rewrites; every result is
re-parsed and checked before it is returned.
"""

from engine.refactor.model_port import GeneratedText, TextGenerator
from engine.refactor.schema import (
    OPERATIONS,
    Alternative,
    RefactorRequest,
    RefactorResult,
    SafetyCheck,
    TextEdit,
)
from engine.refactor.service import applicable_operations, refactor

__all__ = [
    "OPERATIONS",
    "Alternative",
    "GeneratedText",
    "RefactorRequest",
    "RefactorResult",
    "SafetyCheck",
    "TextEdit",
    "TextGenerator",
    "applicable_operations",
    "refactor",
]
