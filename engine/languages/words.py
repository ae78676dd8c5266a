"""Small helpers for writing the word sets of language modules."""

from __future__ import annotations

from typing import Final


def names(words: str) -> frozenset[str]:
    """The whitespace-separated words of ``words`` (keywords, node kinds)."""
    return frozenset(words.split())


ANY: Final = frozenset({"*"})
"""In ``LanguageSpec.branches``: every child of the node is a branch."""
