"""Generation, async jobs (across restarts), monitoring, Prometheus, refactoring, streaming."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from engine.config import Settings
from engine.engine import Engine
from engine.models.catalog import ModelSpec
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown
from tests.conftest import auth_headers, make_settings
from tests.support.rest_client import BASE, api_client
from tests.support.tiny_models import write_tiny_model

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


async def wait_job(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    for _ in range(1200):  # up to two minutes on a busy machine, within the rate limits
        body: dict[str, Any] = (await client.get(url)).json()
        if body["status"] in ("completed", "failed"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"job at {url} did not finish")


async def test_generation_from_a_comment_prompt(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as client:
        response = await client.post(
            f"{BASE}/inference/generation",
            json={
                "model_id": "tiny-starcoder",
                "prompt": "Create a Rust function that adds two numbers",
                "context": {"language": "rust", "existing_code": "use std::cmp::Ordering;\n"},
                "parameters": {"max_tokens": 16, "temperature": 0.0},
            },
        )
    assert response.status_code == 200, response.text
    generation = response.json()["generation"]
    assert generation["text"]
    assert "```" not in generation["text"]
    assert 0 < generation["confidence"] <= 1
    metadata = generation["metadata"]
    assert metadata["prompt_style"] == "comment"
    assert metadata["completion_tokens"] == 16
    assert metadata["model_used"] == "tiny-starcoder"


async def test_chat_models_use_their_own_template(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    chat_path = write_tiny_model(
        tmp_path / "chat.gguf", fim=None, seed=9, chat_template=CHAT_TEMPLATE
    )
    settings = make_settings(tmp_path / "data", tiny_models)
    settings.models.append(
        ModelSpec(id="tiny-chat", name="chat", type="chat", path=chat_path, context_length=1024)
    )
    engine = Engine(settings)
    try:
        async with api_client(engine, settings) as client:
            response = await client.post(
                f"{BASE}/inference/generation",
                json={
                    "model_id": "tiny-chat",
                    "prompt": "Write hello world",
                    "context": {"language": "python"},
                    "parameters": {"max_tokens": 8},
                },
            )
        assert response.status_code == 200, response.text
        metadata = response.json()["generation"]["metadata"]
        assert metadata["prompt_style"] == "chat"
        # The rendered template (system + user + assistant header) is longer than the prompt.
        assert metadata["prompt_tokens"] > 20
    finally:
        await engine.close()


async def test_a_prompt_cannot_spell_a_chat_models_special_tokens(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    # The template's own turn markers are special tokens; a prompt (or a file
    # sent as existing code) that spells one gets plain text: `<fim_prefix>`
    # was one control token a copy, several tokens of text now.
    chat_path = write_tiny_model(
        tmp_path / "chat.gguf", fim="starcoder", seed=9, chat_template=CHAT_TEMPLATE
    )
    settings = make_settings(tmp_path / "data", tiny_models)
    settings.models.append(
        ModelSpec(id="tiny-chat", name="chat", type="chat", path=chat_path, context_length=1024)
    )
    engine = Engine(settings)
    counts: list[int] = []
    try:
        async with api_client(engine, settings) as client:
            for prompt, code in (
                ("Write hello", ""),
                ("Write hello" + " <fim_prefix>" * 10, ""),
                ("Write hello", "x = 1" + " <|assistant|>" * 10),
            ):
                response = await client.post(
                    f"{BASE}/inference/generation",
                    json={
                        "model_id": "tiny-chat",
                        "prompt": prompt,
                        "context": {"language": "python", "existing_code": code},
                        "parameters": {"max_tokens": 2},
                    },
                )
                assert response.status_code == 200, response.text
                counts.append(response.json()["generation"]["metadata"]["prompt_tokens"])
    finally:
        await engine.close()
    plain, spelled_in_prompt, spelled_in_code = counts
    assert spelled_in_prompt - plain >= 10 * 4, counts
    assert spelled_in_code - plain >= 10 * 4, counts


async def test_clients_cannot_send_templates(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as client:
        response = await client.post(
            f"{BASE}/inference/generation",
            json={"prompt": "x", "chat_template": "{{ ''.__class__ }}"},
        )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "chat_template"


async def test_async_completion_job_returns_the_synchronous_body(
    engine: Engine, settings: Settings
) -> None:
    request = {
        "model_id": "tiny-qwen",
        "context": {"language": "python", "code": "def g():\n    return "},
        "parameters": {"max_tokens": 6, "temperature": 0.0},
    }
    async with api_client(engine, settings) as client:
        sync = (await client.post(f"{BASE}/inference/completion", json=request)).json()
        response = await client.post(
            f"{BASE}/inference/completion", json={**request, "options": {"async": True}}
        )
        assert response.status_code == 202
        accepted = response.json()
        assert accepted["status"] == "queued"
        assert accepted["status_url"] == f"/v1/ai/jobs/{accepted['job_id']}"
        assert response.headers["Location"] == accepted["status_url"]
        job = await wait_job(client, accepted["status_url"])
    assert job["status"] == "completed"
    assert job["type"] == "completion"
    assert job["result"]["completion"]["text"] == sync["completion"]["text"]
    assert job["result"]["completion"]["confidence"] == sync["completion"]["confidence"]
    assert job["created_at"] <= job["finished_at"]


async def test_jobs_belong_to_their_caller(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as owner:
        accepted = (
            await owner.post(
                f"{BASE}/inference/generation",
                json={
                    "model_id": "tiny-qwen",
                    "prompt": "x",
                    "parameters": {"max_tokens": 2},
                    "options": {"async": True},
                },
            )
        ).json()
        await wait_job(owner, accepted["status_url"])
    async with api_client(engine, settings) as stranger:
        response = await stranger.get(accepted["status_url"])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_failed_job_keeps_the_error(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as client:
        accepted = (
            await client.post(
                f"{BASE}/inference/completion",
                json={
                    "model_id": "tiny-qwen",
                    "context": {"code": "x = 1\n" * 100},
                    "parameters": {"max_tokens": 4000},
                    "options": {"async": True},
                },
            )
        ).json()
        job = await wait_job(client, accepted["status_url"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "CONTEXT_LENGTH_EXCEEDED"
    assert job["result"] is None


async def test_jobs_run_again_after_a_restart(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    # A long job on a busy machine must not end by its own deadline instead.
    settings = make_settings(tmp_path, tiny_models, inference={"request_timeout_seconds": 900})
    headers = auth_headers(settings)
    request = {
        "model_id": "tiny-deepseek",
        "context": {"language": "python", "code": "def h():\n    return "},
        "parameters": {"max_tokens": 1500},
        "options": {"async": True},
    }
    first = Engine(settings)
    async with api_client(first, settings, headers) as client:
        accepted = (await client.post(f"{BASE}/inference/completion", json=request)).json()
        before = (await client.get(accepted["status_url"])).json()
    # The process goes away while the job is queued or running.
    await first.close()
    assert before["status"] in ("queued", "running")

    second = Engine(settings)
    services = Services(second, settings)
    try:
        async with api_client(second, settings, headers, services=services) as client:
            await services.start()
            job = await wait_job(client, accepted["status_url"])
        assert job["status"] == "completed"
        assert job["result"]["completion"]["metadata"]["completion_tokens"] > 0
    finally:
        await shutdown(second, services)


async def test_model_metrics_are_recorded_and_survive_restart(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(tmp_path, tiny_models)
    headers = auth_headers(settings)
    engine = Engine(settings)
    started = time.time()
    async with api_client(engine, settings, headers) as client:
        for _ in range(3):
            ok = await client.post(
                f"{BASE}/inference/completion",
                json={
                    "model_id": "tiny-qwen",
                    "context": {"code": "a = "},
                    "parameters": {"max_tokens": 4},
                    "options": {"cache": True},
                },
            )
            assert ok.status_code == 200
        bad = await client.post(
            f"{BASE}/inference/completion",
            json={
                "model_id": "tiny-qwen",
                "context": {"code": "x\n" * 50},
                "parameters": {"max_tokens": 4096},
            },
        )
        assert bad.status_code == 400
    await engine.close()

    engine = Engine(settings)
    try:
        async with api_client(engine, settings, headers) as client:
            response = await client.get(f"{BASE}/monitoring/models/tiny-qwen/metrics")
            assert response.status_code == 200, response.text
            body = response.json()
            metrics = body["metrics"]
            assert metrics["inference_count"] == 4
            assert metrics["success_rate"] == 0.75
            assert metrics["error_rate"] == 0.25
            assert metrics["cache_hit_rate"] == 0.5  # 2 of 4 served from the cache
            assert metrics["p95_inference_time_ms"] >= metrics["average_inference_time_ms"] > 0
            assert metrics["gpu_utilization_percent"] is None  # no NVIDIA GPU here
            assert body["time_range"]["start"] <= body["time_range"]["end"]

            # A time range before the records: nothing in it.
            empty = await client.get(
                f"{BASE}/monitoring/models/tiny-qwen/metrics",
                params={"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
            )
            assert empty.json()["metrics"]["inference_count"] == 0
            assert empty.json()["metrics"]["average_inference_time_ms"] is None
            backwards = await client.get(
                f"{BASE}/monitoring/models/tiny-qwen/metrics",
                params={"start": "2030-01-01T00:00:00Z", "end": "2020-01-01T00:00:00Z"},
            )
            assert backwards.status_code == 400
            assert backwards.json()["error"]["details"]["field"] == "end"
            garbage = await client.get(
                f"{BASE}/monitoring/models/tiny-qwen/metrics", params={"start": "yesterday"}
            )
            assert garbage.status_code == 400

            text = (await client.get(f"{BASE}/monitoring/prometheus")).text
            assert 'ai_ide_inferences_total{model="tiny-qwen",outcome="success"} 3' in text
            assert 'ai_ide_inferences_total{model="tiny-qwen",outcome="error"} 1' in text
            assert 'ai_ide_cache_hits_total{model="tiny-qwen"} 2' in text
            assert "# TYPE ai_ide_model_loaded gauge" in text
    finally:
        await engine.close()
    assert started > 0


async def test_refactor_endpoint_spec_example(engine: Engine, settings: Settings) -> None:
    code = "fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }"
    async with api_client(engine, settings) as client:
        response = await client.post(
            f"{BASE}/inference/refactor",
            json={
                "model_id": "tiny-starcoder",
                "code": code,
                "operation": "extract_variable",
                "context": {"language": "rust", "file_path": "src/main.rs"},
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        refactoring = body["refactoring"]
        assert refactoring["type"] == "extract_variable"
        assert refactoring["original_code"] == code
        refactored = refactoring["refactored_code"]
        assert "let " in refactored and "= if x > y { x } else { y };" in refactored
        assert 0 < refactoring["safety_score"] <= 1 and 0 < refactoring["confidence"] <= 1
        assert any(c["name"] for c in refactoring["checks"])
        assert refactoring["explanation"]
        assert isinstance(body["alternatives"], list)

        not_expression = await client.post(
            f"{BASE}/inference/refactor",
            json={
                "model_id": "tiny-starcoder",
                "code": "fn main() {}\n",
                "operation": "extract_variable",
                "context": {"language": "rust", "selection_start": 0, "selection_end": 2},
            },
        )
        assert not_expression.status_code == 422
        assert not_expression.json()["error"]["code"] == "REFACTOR_NOT_APPLICABLE"
        negative = await client.post(
            f"{BASE}/inference/refactor",
            json={
                "code": code,
                "operation": "rename",
                "context": {"language": "rust", "selection_start": -1},
            },
        )
        assert negative.status_code == 422
        assert negative.json()["error"]["details"]["field"] == "context.selection_start"
        backwards = await client.post(
            f"{BASE}/inference/refactor",
            json={
                "code": code,
                "operation": "rename",
                "context": {"language": "rust", "selection_start": 10, "selection_end": 3},
            },
        )
        assert backwards.status_code == 400
        unsupported = await client.post(
            f"{BASE}/inference/refactor",
            json={"code": code, "operation": "rename", "context": {"language": "cobol"}},
        )
        assert unsupported.status_code == 400
        assert unsupported.json()["error"]["code"] == "UNSUPPORTED_LANGUAGE"


# Places to complete at. The tiny models never end at an end-of-generation
# token, but the completion's stop rules (the first newline after a finished
# statement, a closed block, a loop) end it wherever the random weights write
# such a line, and where that is depends on the CPU's arithmetic: on one CI
# machine the first place ended within a few tokens. The test takes the first
# place whose whole generation is long on this machine.
_LONG_CANDIDATES = (
    "def f():\n    return ",
    "def f(items):\n    for item in items:\n        ",
    "class Box:\n    def __init__(self, size):\n        self.size = ",
    "numbers = [",
    "def total(values):\n    result = 0\n    ",
    '"""',
    "x = (",
    "# ",
)
_LONG_ENOUGH = 400  # generated tokens: many times what one streamed batch carries


async def _whole_stream(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, int]:
    """Seconds a streamed completion takes to the end, and the tokens it generated."""
    started = time.monotonic()
    generated = -1
    async with http.stream("POST", f"{BASE}/inference/completion", json=body, timeout=120) as whole:
        assert whole.status_code == 200
        async for line in whole.aiter_lines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if "completion" in data:
                    generated = data["completion"]["metadata"]["completion_tokens"]
    return time.monotonic() - started, generated


async def test_stream_disconnect_frees_the_model(
    engine: Engine, services: Services, settings: Settings
) -> None:
    """A client that goes away mid-stream stops the generation at once."""
    app = create_app(engine, services, settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        worker = await engine.worker_for("tiny-codellama")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=auth_headers(settings)
        ) as http:
            # The same generation left to run, timed in this run (a loaded
            # machine slows both sides): stopping must take a small part of it.
            tried: list[tuple[str, int]] = []
            for code in _LONG_CANDIDATES:
                body = {
                    "model_id": "tiny-codellama",
                    "context": {"code": code, "language": "python"},
                    "parameters": {"max_tokens": 1900, "stop_sequences": []},
                    "options": {"stream": True},
                }
                uncancelled, generated = await _whole_stream(http, body)
                tried.append((code, generated))
                if generated >= _LONG_ENOUGH:
                    break
            else:
                pytest.fail(f"no place generates {_LONG_ENOUGH} tokens here: {tried}")
            async with http.stream(
                "POST", f"{BASE}/inference/completion", json=body, timeout=60
            ) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data:") and json.loads(line[5:]).get("text"):
                        break
                # The runner's counts are not urgent: they may cross after the
                # first token (on a loaded machine they did).
                reported = time.monotonic() + 10
                while worker.active_requests != 1 and time.monotonic() < reported:
                    await asyncio.sleep(0.005)
                assert worker.active_requests == 1
            closed_at = time.monotonic()
            while worker.active_requests and time.monotonic() < closed_at + uncancelled:
                await asyncio.sleep(0.005)
            until_free = time.monotonic() - closed_at
        assert until_free < uncancelled / 4, (until_free, uncancelled, generated)
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("route", ["/inference/generation", "/inference/refactor"])
async def test_unknown_fields_are_named(engine: Engine, settings: Settings, route: str) -> None:
    async with api_client(engine, settings) as client:
        response = await client.post(f"{BASE}{route}", json={"unexpected": 1})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_model_loading_is_503_with_retry_after(engine: Engine, settings: Settings) -> None:
    # Hold the loader for a moment so the model is observably "loading".
    original = engine.registry._load_one

    def slow_load(state: Any, timeout: float) -> None:
        time.sleep(0.5)
        original(state, timeout)

    engine.registry._load_one = slow_load  # type: ignore[method-assign]
    async with api_client(engine, settings) as client:
        loading = await client.post(f"{BASE}/models/tiny-qwen/load")
        assert loading.status_code == 202
        response = await client.post(
            f"{BASE}/inference/completion",
            json={"model_id": "tiny-qwen", "context": {"code": "x = "}},
        )
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "MODEL_LOADING"
        assert response.headers["Retry-After"] == str(error["details"]["retry_after_seconds"])


async def test_full_queue_is_503_and_timeout_is_504(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(
        tmp_path,
        tiny_models,
        inference={"max_queue": 1, "n_seq_max": 1, "request_timeout_seconds": 30},
    )
    engine = Engine(settings)
    long = {
        "model_id": "tiny-codellama",
        "context": {"code": "x = [\n"},
        "parameters": {"max_tokens": 1500},
    }
    try:
        async with api_client(engine, settings) as client:
            await engine.worker_for("tiny-codellama")
            running = asyncio.create_task(client.post(f"{BASE}/inference/completion", json=long))
            await asyncio.sleep(0.1)
            queued = asyncio.create_task(client.post(f"{BASE}/inference/completion", json=long))
            await asyncio.sleep(0.1)
            refused = await client.post(f"{BASE}/inference/completion", json=long)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "QUEUE_FULL"
            assert "Retry-After" in refused.headers
            await asyncio.gather(running, queued)
    finally:
        await engine.close()

    settings = make_settings(
        tmp_path / "short", tiny_models, inference={"request_timeout_seconds": 0.2}
    )
    engine = Engine(settings)
    try:
        async with api_client(engine, settings) as client:
            response = await client.post(f"{BASE}/inference/completion", json=long)
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "INFERENCE_TIMEOUT"
    finally:
        await engine.close()


async def test_unexpected_errors_are_500_without_internals(
    engine: Engine, services: Services, settings: Settings
) -> None:
    def broken() -> None:
        raise RuntimeError("/secret/path/to/internals")

    engine.health = broken  # type: ignore[assignment,method-assign]
    app = create_app(engine, services, settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://test",
        headers=auth_headers(settings),
    ) as client:
        response = await client.get(f"{BASE}/health")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert "secret" not in response.text and "Traceback" not in response.text


async def test_unload_during_a_generation_waits_for_it(engine: Engine, settings: Settings) -> None:
    async with api_client(engine, settings) as client:
        await engine.worker_for("tiny-codellama")
        generation = asyncio.create_task(
            client.post(
                f"{BASE}/inference/completion",
                json={
                    "model_id": "tiny-codellama",
                    "context": {"code": "x = [\n"},
                    "parameters": {"max_tokens": 800},
                },
            )
        )
        # Unload only once the generation is decoding (on a busy machine the
        # request may not have reached the model after a fixed sleep).
        worker = engine.registry.worker("tiny-codellama")
        for _ in range(3000):
            if worker.active_requests:
                break
            await asyncio.sleep(0.01)
        unloaded = await client.post(f"{BASE}/models/tiny-codellama/unload")
        finished = await generation
    # The unload waited: the generation completed normally, then the model went.
    assert finished.status_code == 200
    assert finished.json()["completion"]["metadata"]["completion_tokens"] > 0
    assert unloaded.status_code == 200
    assert engine.model("tiny-codellama").status == "available"
