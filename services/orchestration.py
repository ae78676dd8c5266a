"""Multi-model orchestration: run one task on several models and choose a result.

Strategies:

- ``majority_vote``: results are grouped after normalisation (whitespace, and
  token-level comparison through tree-sitter where the language is known);
  the largest group wins, ties go to the group with the most confident member.
- ``weighted_average``: each distinct result scores the sum of weight x
  confidence of the models that produced it; the highest score wins.
- ``best_of_n``: the most confident result.
- ``fallback``: models in order; the next runs when the previous errs, times
  out or answers below the confidence threshold.

``consensus_score`` is the share of the evidence that supports the final
result: the sum of weight x confidence of the successful models whose result
is equivalent to the final one, over the same sum for every successful model
(weights are 1 when none are given). 1.0 means every model agreed; a value
near 1/n means the final result stood alone.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from engine.errors import EngineError, InferenceTimeoutError, InvalidRequestError
from engine.syntax import ParserPool, resolve_language

Strategy = Literal["majority_vote", "weighted_average", "best_of_n", "fallback"]
STRATEGIES: tuple[Strategy, ...] = ("majority_vote", "weighted_average", "best_of_n", "fallback")

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class ModelAnswer:
    """What one model produced for the task."""

    text: str
    confidence: float


RunOnModel = Callable[[str], Awaitable[ModelAnswer]]


@dataclass(frozen=True)
class ModelOutcome:
    """One model's part in an orchestration."""

    model_id: str
    answer: ModelAnswer | None
    error: EngineError | None
    processing_time_ms: float
    ran: bool = True  # False: fallback never needed this model


@dataclass(frozen=True)
class OrchestrationOutcome:
    """The chosen result and how it was chosen."""

    strategy: Strategy
    outcomes: list[ModelOutcome]
    final_result: str | None
    final_model: str | None
    consensus_score: float
    total_processing_time_ms: float


def normalize(text: str, language: str | None, parsers: ParserPool) -> tuple[str, ...]:
    """A comparison key: syntax tokens where the language is known, else words.

    Comments and whitespace do not count, so ``a+b`` and ``a + b  # sum``
    are the same answer.
    """
    canonical = resolve_language(language) if language else None
    if canonical is not None and text.strip():
        try:
            tree = parsers.parse(canonical, text.encode("utf-8", "replace"))
        except Exception:  # an unparsable fragment still compares by words
            tree = None
        if tree is not None:
            tokens: list[str] = []
            stack = [tree.root_node]
            while stack:
                node = stack.pop()
                if "comment" in node.type:
                    continue
                if node.child_count == 0:
                    value = (node.text or b"").decode("utf-8", "replace").strip()
                    if value:
                        tokens.append(value)
                else:
                    stack.extend(reversed(node.children))
            if tokens:
                return tuple(tokens)
    return tuple(_WORD.findall(text))


def validate_weights(models: Sequence[str], weights: Sequence[float] | None) -> list[float]:
    """Weights aligned with ``models`` (1.0 each when absent)."""
    if weights is None:
        return [1.0] * len(models)
    if len(weights) != len(models):
        raise InvalidRequestError(
            "weights",
            f"weights has {len(weights)} entries for {len(models)} models",
            expected=len(models),
        )
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise InvalidRequestError("weights", "weights must be >= 0 with a positive sum")
    return [float(w) for w in weights]


def choose(
    strategy: Strategy,
    outcomes: Sequence[ModelOutcome],
    weights: Sequence[float],
    keys: Sequence[tuple[str, ...] | None],
) -> tuple[int | None, float]:
    """Index of the winning outcome and the consensus score (see module docstring)."""
    ok = [i for i, o in enumerate(outcomes) if o.answer is not None]
    if not ok:
        return None, 0.0

    def conf(i: int) -> float:
        answer = outcomes[i].answer
        assert answer is not None
        return answer.confidence

    groups: dict[tuple[str, ...], list[int]] = {}
    for i in ok:
        key = keys[i]
        assert key is not None
        groups.setdefault(key, []).append(i)

    if strategy == "majority_vote":
        best_group = max(groups.values(), key=lambda g: (len(g), max(conf(i) for i in g)))
        winner = max(best_group, key=conf)
    elif strategy == "weighted_average":
        best_group = max(groups.values(), key=lambda g: sum(weights[i] * conf(i) for i in g))
        winner = max(best_group, key=conf)
    elif strategy == "best_of_n":
        winner = max(ok, key=conf)
    else:
        winner = ok[-1]

    winning_key = keys[winner]
    assert winning_key is not None
    support = sum(weights[i] * conf(i) for i in groups[winning_key])
    total = sum(weights[i] * conf(i) for i in ok)
    return winner, (support / total if total > 0 else 0.0)


async def _timed(model_id: str, run: RunOnModel, limit: float) -> ModelOutcome:
    started = time.monotonic()
    try:
        answer = await asyncio.wait_for(run(model_id), timeout=limit)
    except TimeoutError:
        error: EngineError = InferenceTimeoutError(
            f"model '{model_id}' did not answer within {limit:g} s"
        )
        return ModelOutcome(model_id, None, error, (time.monotonic() - started) * 1000.0)
    except EngineError as exc:
        return ModelOutcome(model_id, None, exc, (time.monotonic() - started) * 1000.0)
    return ModelOutcome(model_id, answer, None, (time.monotonic() - started) * 1000.0)


async def orchestrate(
    models: Sequence[str],
    strategy: Strategy,
    run: RunOnModel,
    *,
    weights: Sequence[float] | None = None,
    timeout_seconds: float = 60.0,
    confidence_threshold: float = 0.5,
    language: str | None = None,
    parsers: ParserPool | None = None,
) -> OrchestrationOutcome:
    """Run ``run`` on each model per the strategy and pick the final result."""
    if not models:
        raise InvalidRequestError("models", "give at least one model")
    if len(set(models)) != len(models):
        raise InvalidRequestError("models", "models must not repeat")
    aligned = validate_weights(models, weights)
    started = time.monotonic()
    pool = parsers or ParserPool()
    if strategy == "fallback":
        outcomes = await _run_fallback(models, run, timeout_seconds, confidence_threshold, started)
    else:
        outcomes = list(await asyncio.gather(*(_timed(m, run, timeout_seconds) for m in models)))
    keys = [
        normalize(o.answer.text, language, pool) if o.answer is not None else None for o in outcomes
    ]
    accepted = next(
        (
            i
            for i, o in enumerate(outcomes)
            if o.answer is not None and o.answer.confidence >= confidence_threshold
        ),
        None,
    )
    winner: int | None
    if strategy == "fallback" and accepted is not None:
        winner, consensus = _score_fixed(accepted, outcomes, aligned, keys)
    else:
        # fallback where nobody cleared the bar: the most confident answer.
        effective: Strategy = "best_of_n" if strategy == "fallback" else strategy
        winner, consensus = choose(effective, outcomes, aligned, keys)
    final = outcomes[winner] if winner is not None else None
    return OrchestrationOutcome(
        strategy=strategy,
        outcomes=outcomes,
        final_result=final.answer.text if final is not None and final.answer else None,
        final_model=final.model_id if final is not None else None,
        consensus_score=consensus,
        total_processing_time_ms=(time.monotonic() - started) * 1000.0,
    )


async def _run_fallback(
    models: Sequence[str],
    run: RunOnModel,
    timeout_seconds: float,
    threshold: float,
    started: float,
) -> list[ModelOutcome]:
    """Run models in order until one answers confidently; later ones never run."""
    outcomes: list[ModelOutcome] = []
    for model_id in models:
        remaining = timeout_seconds - (time.monotonic() - started)
        if remaining <= 0:
            timed_out = InferenceTimeoutError("the orchestration ran out of time")
            outcomes.append(ModelOutcome(model_id, None, timed_out, 0.0))
            continue
        outcome = await _timed(model_id, run, remaining)
        outcomes.append(outcome)
        if outcome.answer is not None and outcome.answer.confidence >= threshold:
            break
    ran = {o.model_id for o in outcomes}
    return outcomes + [ModelOutcome(m, None, None, 0.0, ran=False) for m in models if m not in ran]


def _score_fixed(
    winner: int,
    outcomes: Sequence[ModelOutcome],
    weights: Sequence[float],
    keys: Sequence[tuple[str, ...] | None],
) -> tuple[int, float]:
    """Consensus for an already chosen winner."""
    ok = [i for i, o in enumerate(outcomes) if o.answer is not None]

    def mass(i: int) -> float:
        answer = outcomes[i].answer
        assert answer is not None
        return weights[i] * answer.confidence

    support = sum(mass(i) for i in ok if keys[i] == keys[winner])
    total = sum(mass(i) for i in ok)
    return winner, (support / total if total > 0 else 0.0)
