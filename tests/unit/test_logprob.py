"""The confidence's log-probability: the normalizer summed near the top only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.runtime.llama_backend import LogprobMeter

N_VOCAB = 262_144  # Gemma's: the largest vocabulary the bound is stated for


def exact(logits: np.ndarray, token: int) -> float:
    wide = logits.astype(np.float64)
    peak = wide.max()
    return float(wide[token] - peak - math.log(np.exp(wide - peak).sum()))


@pytest.mark.parametrize("spread", [0.5, 3.0, 12.0])
def test_matches_the_full_softmax_within_its_bound(spread: float) -> None:
    rng = np.random.default_rng(7)
    meter = LogprobMeter(N_VOCAB)
    for _ in range(5):
        # spread 0.5: a flat row, everything near the top; 12: a peaked one.
        logits = (rng.standard_normal(N_VOCAB) * spread).astype(np.float32)
        for token in (int(logits.argmax()), int(logits.argmin()), 12345):
            assert abs(meter(logits, token) - exact(logits, token)) <= 5.4e-4 + 1e-5


def test_leaves_the_row_untouched() -> None:
    logits = np.linspace(-30.0, 5.0, N_VOCAB, dtype=np.float32)
    before = logits.copy()
    LogprobMeter(N_VOCAB)(logits, 3)
    assert np.array_equal(logits, before)


def test_a_row_of_nan_is_a_very_unlikely_token_not_an_error() -> None:
    logits = np.full(N_VOCAB, np.nan, dtype=np.float32)
    assert LogprobMeter(N_VOCAB)(logits, 0) == -1e9
