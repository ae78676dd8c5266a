"""Token healing at the cursor: the prompt's last token is taken back and regenerated.

A completion prompt ends wherever the user's cursor is, which is rarely
where the tokenizer would have ended a token. After ``isinstance(obj, `` the
prompt's last token is a lone space, although the model has only ever seen
that space fused with the word after it (`` Undefined``); conditioned on a
token it never saw there, the model writes noise (``1``, ``0x00``,
``nderefined)``). Token healing (guidance's name for it; llama.cpp had it as
``--token-healing``) removes that last token from the prompt and lets the
first generated token be any token whose text starts with the removed text:
the model writes `` Undefined`` itself, and the removed text is cut from the
front of what it wrote, since the document already holds it.

:class:`TokenHealer` indexes a vocabulary once (its normal tokens sorted by
their bytes, so the tokens extending a given text are one contiguous run
found by bisection) and says, for a prompt, what to take back and which
first tokens are allowed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def _after_extensions(text: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``text``.

    None when there is none (``text`` is all 0xFF bytes): its extensions run
    to the end of the sorted order.
    """
    stripped = text.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True)
class Healing:
    """What healing a prompt takes back, and which tokens may replace it."""

    removed: bytes  # the bytes of the prompt's last token, taken out of the prompt
    allowed: npt.NDArray[np.int64]  # token ids whose bytes start with ``removed``


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def log_prob_among(
    logits: npt.NDArray[np.float32], allowed: npt.NDArray[np.int64], token: int
) -> float:
    """log p(token) under the row's distribution renormalized over ``allowed``.

    The confidence of a healed first token: only the allowed tokens could
    have been written there, so they share all the probability.
    """
    among = logits[allowed].astype(np.float64)
    peak = float(among.max())
    total = float(np.exp(among - peak).sum())
    if not total > 0.0 or not np.isfinite(peak):
        return -1e9
    value = float(logits[token]) - peak - math.log(total)
    return value if math.isfinite(value) else -1e9


class TokenHealer:
    """A vocabulary's normal tokens, sorted by their bytes, for prefix lookups.

    ``pieces`` holds every token's bytes; ``normal`` says which tokens are
    ordinary text (control, unused and user-defined tokens are never offered
    in place of the user's text).
    """

    def __init__(self, pieces: Sequence[bytes], normal: Callable[[int], bool]) -> None:
        ids = [t for t, piece in enumerate(pieces) if piece and normal(t)]
        ids.sort(key=lambda t: pieces[t])
        self._pieces = pieces
        self._sorted = [pieces[t] for t in ids]
        self._ids = np.array(ids, dtype=np.int64)
        self._normal = normal

    def extensions(self, text: bytes) -> npt.NDArray[np.int64]:
        """Ids of the normal tokens whose bytes start with ``text`` (a view; do not modify)."""
        lo = bisect.bisect_left(self._sorted, text)
        bound = _after_extensions(text)
        hi = len(self._sorted) if bound is None else bisect.bisect_left(self._sorted, bound, lo)
        return self._ids[lo:hi]

    def heal(self, tokens: Sequence[int], keep: int) -> Healing | None:
        """How to heal a prompt whose last token the cursor may have cut, or None.

        Nothing is taken back when the prompt is no longer than ``keep`` tokens
        (the part that must stay: a BOS, a FIM middle token), when its last
        token is not ordinary text, or when no other token extends it (the
        model could only write the same token again).
        """
        if len(tokens) <= keep:
            return None
        last = tokens[-1]
        if not 0 <= last < len(self._pieces) or not self._normal(last):
            return None
        removed = self._pieces[last]
        if not removed or not _is_text(removed):
            # A byte token ending a character that the token before began:
            # regenerating it alone would show the model half a character.
            return None
        allowed = self.extensions(removed)
        if len(allowed) <= 1:
            return None
        return Healing(removed, allowed)
