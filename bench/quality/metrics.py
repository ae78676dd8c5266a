"""Text metrics of the real-code holes, as Tabby's and llm-ls's evaluations compute them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def _normal(text: str) -> str:
    # Trailing whitespace (and the final line break) carries no meaning here;
    # leading indentation does, in offside languages.
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def exact_match(candidate: str, expected: str) -> bool:
    """Whether the candidate is the expected text, trailing whitespace aside."""
    return _normal(candidate) == _normal(expected)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def edit_similarity(candidate: str, expected: str) -> float:
    """1 - edit distance / the longer length (1.0: identical, both empty included)."""
    a, b = _normal(candidate), _normal(expected)
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - levenshtein(a, b) / longest


def median(values: Sequence[float]) -> float:
    """The median, 0.0 for no values."""
    return statistics.median(values) if values else 0.0
