"""Orchestration across differently weighted tiny models: each strategy's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.config import Settings
from engine.engine import Engine
from engine.errors import InvalidRequestError
from engine.models.catalog import ModelSpec
from engine.syntax import ParserPool
from services.orchestration import ModelAnswer, choose, normalize, orchestrate
from tests.conftest import make_settings
from tests.support.rest_client import BASE, api_client

CODE = "def total(numbers):\n    return "
TASK = {
    "type": "completion",
    "context": {"language": "python", "code": CODE, "cursor_position": len(CODE)},
    "parameters": {"max_tokens": 8, "temperature": 0.0},
}


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{BASE}/orchestration/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()["orchestration_result"]  # type: ignore[no-any-return]


async def direct(engine: Engine, settings: Settings, model_id: str) -> tuple[str, float]:
    """What one model answers alone through the completion endpoint."""
    async with api_client(engine, settings) as client:
        response = await client.post(
            f"{BASE}/inference/completion",
            json={
                "model_id": model_id,
                "context": TASK["context"],
                "parameters": TASK["parameters"],
            },
        )
    completion = response.json()["completion"]
    return completion["text"], completion["confidence"]


async def test_every_strategy_chooses_as_defined(engine: Engine, settings: Settings) -> None:
    models = ["tiny-starcoder", "tiny-starcoder-b", "tiny-qwen"]
    alone = {m: await direct(engine, settings, m) for m in models}
    texts = {m: t for m, (t, _) in alone.items()}
    confidence = {m: c for m, (_, c) in alone.items()}
    # The models really disagree, so the strategies have something to choose.
    assert len(set(texts.values())) == 3

    async with api_client(engine, settings) as client:
        best = await post(client, {"models": models, "strategy": "best_of_n", "task": TASK})
        assert best["strategy_used"] == "best_of_n"
        top = max(models, key=lambda m: confidence[m])
        assert best["final_result"] == texts[top]
        assert best["final_model"] == top
        by_model = {r["model_id"]: r for r in best["model_results"]}
        for model_id in models:
            # Same request, same greedy answer as the single endpoint.
            assert by_model[model_id]["result"] == texts[model_id]
            assert by_model[model_id]["confidence"] == pytest.approx(confidence[model_id], abs=1e-3)
            assert by_model[model_id]["processing_time_ms"] > 0
        assert best["total_processing_time_ms"] > 0
        total = sum(confidence.values())
        assert best["consensus_score"] == pytest.approx(confidence[top] / total, abs=1e-3)

        # Weights can overturn confidence: all weight on the least confident model.
        low = min(models, key=lambda m: confidence[m])
        weights = [1.0 if m == low else 0.01 for m in models]
        weighted = await post(
            client,
            {"models": models, "strategy": "weighted_average", "weights": weights, "task": TASK},
        )
        assert weighted["final_model"] == low
        assert weighted["final_result"] == texts[low]

        # Majority vote with all-different answers: a three-way tie broken by confidence.
        vote = await post(client, {"models": models, "strategy": "majority_vote", "task": TASK})
        assert vote["final_model"] == top

        # Fallback: a threshold nobody reaches runs every model, then keeps the best.
        strict = await post(
            client,
            {"models": models, "strategy": "fallback", "task": TASK, "confidence_threshold": 1.0},
        )
        assert [r["status"] for r in strict["model_results"]] == ["success"] * 3
        assert strict["final_model"] == top
        # A threshold the first model clears stops there; the rest never run.
        easy = await post(
            client,
            {"models": models, "strategy": "fallback", "task": TASK, "confidence_threshold": 0.0},
        )
        assert easy["final_model"] == models[0]
        assert [r["status"] for r in easy["model_results"]] == ["success", "skipped", "skipped"]


async def test_majority_vote_prefers_agreement_over_confidence(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    # Two catalog entries over the same weights agree with each other.
    settings = make_settings(tmp_path, tiny_models)
    settings.models.append(
        ModelSpec(
            id="tiny-qwen-twin", name="twin", path=tiny_models["tiny-qwen"], context_length=2048
        )
    )
    engine = Engine(settings)
    try:
        alone = {m: await direct(engine, settings, m) for m in ("tiny-qwen", "tiny-starcoder")}
        async with api_client(engine, settings) as client:
            result = await post(
                client,
                {
                    "models": ["tiny-starcoder", "tiny-qwen", "tiny-qwen-twin"],
                    "strategy": "majority_vote",
                    "task": TASK,
                },
            )
    finally:
        await engine.close()
    assert result["final_result"] == alone["tiny-qwen"][0]
    assert result["final_model"] in ("tiny-qwen", "tiny-qwen-twin")
    qwen, star = alone["tiny-qwen"][1], alone["tiny-starcoder"][1]
    assert result["consensus_score"] == pytest.approx(2 * qwen / (2 * qwen + star), abs=1e-3)


def test_majority_vote_groups_after_normalisation() -> None:
    from services.orchestration import ModelOutcome

    parsers = ParserPool()
    answers = [("a", "x = a+b", 0.5), ("b", "x = a + b  # sum", 0.4), ("c", "x = a - b", 0.9)]
    outcomes = [ModelOutcome(m, ModelAnswer(t, c), None, 1.0) for m, t, c in answers]
    keys = [normalize(t, "python", parsers) for _, t, _ in answers]
    assert keys[0] == keys[1] != keys[2]
    winner, consensus = choose("majority_vote", outcomes, [1, 1, 1], keys)
    assert winner == 0  # two equivalent answers beat one more confident answer
    assert consensus == pytest.approx(0.9 / 1.8)
    winner, _ = choose("best_of_n", outcomes, [1, 1, 1], keys)
    assert winner == 2
    winner, _ = choose("weighted_average", outcomes, [0.2, 0.2, 1.0], keys)
    assert winner == 2


async def test_failing_model_is_reported_and_others_count(
    engine: Engine, settings: Settings
) -> None:
    async def run(model_id: str) -> ModelAnswer:
        if model_id == "bad":
            raise InvalidRequestError("x", "boom")
        return ModelAnswer("ok", 0.7)

    outcome = await orchestrate(["bad", "good"], "best_of_n", run)
    assert outcome.final_model == "good"
    assert (
        outcome.outcomes[0].error is not None
        and outcome.outcomes[0].error.code == "INVALID_REQUEST"
    )
    assert outcome.consensus_score == 1.0


async def test_weights_must_match_models(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as client:
        response = await client.post(
            f"{BASE}/orchestration/inference",
            json={
                "models": ["tiny-qwen", "tiny-starcoder"],
                "strategy": "weighted_average",
                "weights": [1.0],
                "task": TASK,
            },
        )
        assert response.status_code == 400
        assert response.json()["error"]["details"]["field"] == "weights"
        unknown = await client.post(
            f"{BASE}/orchestration/inference",
            json={"models": ["tiny-qwen", "nope"], "strategy": "best_of_n", "task": TASK},
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "MODEL_NOT_FOUND"
        negative = await client.post(
            f"{BASE}/orchestration/inference",
            json={"models": ["tiny-qwen"], "strategy": "best_of_n", "weights": [-1], "task": TASK},
        )
        assert negative.status_code == 422
