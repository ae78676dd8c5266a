"""Batch inference: mixed request types and models, partial failure, storage, async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.config import Settings
from engine.engine import Engine
from engine.events import EngineEvent
from services.composition import Services
from tests.support.rest_client import BASE, api_client
from tests.support.worker_watch import PeakActive

RUST = "fn main() {"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Batches are stored: every test runs on SQLite, then on PostgreSQL."""
    backend: str = request.param
    return backend


def completion(item_id: str, model_id: str, code: str = "def f(x):\n    return ") -> dict[str, Any]:
    return {
        "id": item_id,
        "model_id": model_id,
        "type": "completion",
        "context": {"language": "python", "code": code},
        "parameters": {"max_tokens": 6},
    }


async def test_batch_mixes_types_and_models(engine: Engine, settings: Settings) -> None:
    body = {
        "requests": [
            {
                "id": "req_1",
                "model_id": "tiny-starcoder",
                "type": "completion",
                "context": {"language": "rust", "code": RUST, "cursor_position": 12},
                "parameters": {"max_tokens": 6},
            },
            {
                "id": "req_2",
                "model_id": "tiny-qwen",
                "type": "generation",
                "prompt": "Create a Python function to validate email addresses",
                "parameters": {"max_tokens": 12},
            },
            {
                "id": "req_3",
                "model_id": "tiny-deepseek",
                "type": "refactor",
                "code": "fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }",
                "operation": "extract_variable",
                "context": {"language": "rust"},
            },
        ],
        "options": {"parallel_execution": True, "max_concurrent": 5, "timeout_seconds": 120},
    }
    async with api_client(engine, settings) as client:
        response = await client.post(f"{BASE}/batch/inference", json=body)
        assert response.status_code == 200, response.text
        batch = response.json()
        assert batch["status"] == "completed"
        assert batch["batch_id"].startswith("batch_")
        results = {r["request_id"]: r for r in batch["results"]}
        assert set(results) == {"req_1", "req_2", "req_3"}
        assert "completion" in results["req_1"]["result"]
        assert "generation" in results["req_2"]["result"]
        refactoring = results["req_3"]["result"]["refactoring"]
        assert "let " in refactoring["refactored_code"]
        for item in batch["results"]:
            assert item["status"] == "success" and item["processing_time_ms"] > 0
        summary = batch["summary"]
        assert summary["total_requests"] == 3 and summary["successful_requests"] == 3
        assert summary["average_processing_time_ms"] > 0

        stored = await client.get(f"{BASE}/batch/{batch['batch_id']}")
        assert stored.status_code == 200
        assert stored.json() == batch


async def test_partial_failure_keeps_the_other_results(engine: Engine, settings: Settings) -> None:
    body = {
        "requests": [
            completion("ok", "tiny-qwen"),
            {**completion("too-long", "tiny-qwen"), "parameters": {"max_tokens": 4096}},
        ]
    }
    async with api_client(engine, settings) as client:
        batch = (await client.post(f"{BASE}/batch/inference", json=body)).json()
    assert batch["status"] == "partial"
    results = {r["request_id"]: r for r in batch["results"]}
    assert results["ok"]["status"] == "success"
    failed = results["too-long"]
    assert failed["status"] == "error"
    assert failed["error"]["code"] == "CONTEXT_LENGTH_EXCEEDED"
    assert failed["error"]["request_id"] == "too-long"
    assert batch["summary"]["failed_requests"] == 1


async def test_same_model_requests_share_the_worker(engine: Engine, settings: Settings) -> None:
    """Requests for one model decode together: the worker sees them concurrently."""
    await engine.worker_for("tiny-starcoder")
    worker = engine.registry.worker("tiny-starcoder")
    body = {
        "requests": [
            {**completion(f"r{i}", "tiny-starcoder"), "parameters": {"max_tokens": 200}}
            for i in range(4)
        ],
        "options": {"max_concurrent": 4},
    }
    async with api_client(engine, settings) as client, PeakActive(worker) as watch:
        batch = (await client.post(f"{BASE}/batch/inference", json=body)).json()
    assert batch["status"] == "completed"
    assert watch.peak >= 2


async def test_sequential_option_runs_one_at_a_time(engine: Engine, settings: Settings) -> None:
    await engine.worker_for("tiny-qwen")
    worker = engine.registry.worker("tiny-qwen")
    body = {
        "requests": [
            {**completion(f"r{i}", "tiny-qwen"), "parameters": {"max_tokens": 100}}
            for i in range(3)
        ],
        "options": {"parallel_execution": False},
    }
    async with api_client(engine, settings) as client, PeakActive(worker) as watch:
        batch = (await client.post(f"{BASE}/batch/inference", json=body)).json()
    assert batch["status"] == "completed"
    assert watch.peak == 1


async def test_async_batch_returns_at_once_and_publishes(
    engine: Engine, services: Services, settings: Settings
) -> None:
    events: list[EngineEvent] = []
    services.state_events.subscribe(lambda event, tx: events.append(event))
    await services.start()
    body = {"requests": [completion("a", "tiny-codellama")], "options": {"async": True}}
    async with api_client(engine, settings, services=services) as client:
        response = await client.post(f"{BASE}/batch/inference", json=body)
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "running"
        url = accepted["status_url"]
        assert response.headers["Location"] == url
        for _ in range(500):
            stored = (await client.get(url)).json()
            if stored["status"] != "running":
                break
            await asyncio.sleep(0.02)
        assert stored["status"] == "completed"
        assert stored["results"][0]["request_id"] == "a"
    completed = [e for e in events if e.type == "batch_completed"]
    assert completed and completed[0].data["batch_id"] == accepted["batch_id"]


async def test_batches_belong_to_their_caller(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as first:
        batch = (
            await first.post(
                f"{BASE}/batch/inference", json={"requests": [completion("a", "tiny-qwen")]}
            )
        ).json()
    async with api_client(engine, settings) as second:
        response = await second.get(f"{BASE}/batch/{batch['batch_id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_batch_validation(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as client:
        duplicate = await client.post(
            f"{BASE}/batch/inference",
            json={"requests": [completion("a", "tiny-qwen"), completion("a", "tiny-qwen")]},
        )
        assert duplicate.status_code == 400
        assert duplicate.json()["error"]["details"]["field"] == "requests.id"
        bad_type = await client.post(
            f"{BASE}/batch/inference",
            json={"requests": [{"id": "x", "type": "translate", "model_id": "tiny-qwen"}]},
        )
        assert bad_type.status_code == 422
        empty = await client.post(f"{BASE}/batch/inference", json={"requests": []})
        assert empty.status_code == 422
        # An unknown model refuses the batch before anything runs, naming the item.
        unknown = await client.post(
            f"{BASE}/batch/inference",
            json={"requests": [completion("ok", "tiny-qwen"), completion("r2", "nope")]},
        )
        assert unknown.status_code == 404
        error = unknown.json()["error"]
        assert error["code"] == "MODEL_NOT_FOUND"
        assert (error["details"]["field"], error["details"]["request_id"]) == (
            "requests[1].model_id",
            "r2",
        )
