"""The REST slice: models, load/unload, completion, health, and the error envelope."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from engine.config import Settings
from engine.engine import Engine
from lsp_server import runner
from lsp_server.sidecar.app import create_app
from services.composition import Services
from tests.conftest import auth_headers

BASE = "/v1/ai"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest_asyncio.fixture
async def client(
    engine: Engine, services: Services, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(engine, services, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=auth_headers(settings)
    ) as http:
        yield http


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    assert RFC3339.match(error["timestamp"])
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


async def load(client: httpx.AsyncClient, model_id: str) -> None:
    response = await client.post(f"{BASE}/models/{model_id}/load", json={"priority": "high"})
    assert response.status_code in (200, 202)
    for _ in range(500):
        models = (await client.get(f"{BASE}/models")).json()["models"]
        status = next(m["status"] for m in models if m["id"] == model_id)
        if status == "loaded":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{model_id} did not load")


async def test_list_models_shape(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/models")
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"total_count": 6, "has_more": False}
    first = body["models"][0]
    for field in (
        "id",
        "name",
        "type",
        "status",
        "capabilities",
        "memory_usage_mb",
        "last_used",
        "performance_metrics",
    ):
        assert field in first
    assert first["status"] == "available"
    assert first["memory_usage_mb"] is None
    assert first["performance_metrics"] == {"avg_inference_time_ms": None, "success_rate": None}
    page = (await client.get(f"{BASE}/models", params={"limit": 2, "offset": 1})).json()
    assert len(page["models"]) == 2 and page["pagination"]["has_more"] is True


async def test_load_unload_and_measured_figures(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{BASE}/models/tiny-starcoder/load",
        json={"priority": "high", "timeout_seconds": 300, "force_reload": False},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["model_id"] == "tiny-starcoder"
    assert body["status"] == "loading"
    assert isinstance(body["queue_position"], int)
    assert body["estimated_completion_time_seconds"] >= 0
    await load(client, "tiny-starcoder")
    again = await client.post(f"{BASE}/models/tiny-starcoder/load")
    assert again.status_code == 200 and again.json()["status"] == "loaded"
    entry = next(
        m
        for m in (await client.get(f"{BASE}/models")).json()["models"]
        if m["id"] == "tiny-starcoder"
    )
    assert entry["memory_usage_mb"] > 0
    assert entry["fim_family"] == "starcoder"

    unloaded = await client.post(f"{BASE}/models/tiny-starcoder/unload")
    assert unloaded.status_code == 200
    body = unloaded.json()
    assert body["status"] == "unloaded"
    assert body["unload_time_ms"] > 0
    assert body["memory_freed_mb"] >= 0
    not_loaded = await client.post(f"{BASE}/models/tiny-starcoder/unload")
    assert_envelope(not_loaded, 409, "MODEL_NOT_LOADED")


async def test_completion_returns_the_documented_shape(client: httpx.AsyncClient) -> None:
    await load(client, "tiny-starcoder")
    code = "fn calculate_fibonacci(n: u32) -> u32 {\n    if n <= 1 {\n        return n;\n    }\n"
    response = await client.post(
        f"{BASE}/inference/completion",
        json={
            "model_id": "tiny-starcoder",
            "context": {
                "language": "rust",
                "code": code,
                "cursor_position": len(code),
                "file_path": "src/main.rs",
                "project_context": {"dependencies": ["serde"], "framework": "axum"},
            },
            "parameters": {
                "max_tokens": 20,
                "temperature": 0.0,
                "top_p": 0.9,
                "stop_sequences": ["\n\n"],
                "frequency_penalty": 0.0,
                "presence_penalty": 0.0,
            },
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    completion = body["completion"]
    assert isinstance(completion["text"], str)
    assert 0.0 < completion["confidence"] <= 1.0
    metadata = completion["metadata"]
    assert metadata["model_used"] == "tiny-starcoder"
    assert metadata["tokens_used"] == metadata["prompt_tokens"] + metadata["completion_tokens"]
    assert metadata["completion_tokens"] > 0
    assert metadata["processing_time_ms"] > 0
    assert metadata["used_fim"] is True
    assert body["suggestions"] == []
    # The same request through the engine directly gives the same greedy text.
    models = (await client.get(f"{BASE}/models")).json()["models"]
    entry = next(m for m in models if m["id"] == "tiny-starcoder")
    assert entry["last_used"] is not None and RFC3339.match(entry["last_used"])
    assert entry["performance_metrics"]["success_rate"] == 1.0


async def test_completion_suggestions_have_their_own_confidence(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"{BASE}/inference/completion",
        json={
            "model_id": "tiny-qwen",
            "context": {"language": "python", "code": "def f(x):\n    return "},
            "parameters": {"max_tokens": 12, "n": 3, "seed": 7},
        },
    )
    assert response.status_code == 200, response.text
    suggestions = response.json()["suggestions"]
    assert suggestions
    for suggestion in suggestions:
        assert 0.0 < suggestion["confidence"] <= 1.0
        assert "temperature" in suggestion["reasoning"] and "seed" in suggestion["reasoning"]


async def test_health_reports_real_checks(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    registry = body["services"]["model_registry"]
    assert registry == {"status": "healthy", "loaded_models": 0, "total_models": 6}
    assert body["services"]["inference_engine"]["active_requests"] == 0
    resources = body["system_resources"]
    assert 0 <= resources["cpu_usage_percent"] <= 100
    assert 0 < resources["memory_usage_percent"] <= 100
    assert "gpu_memory_used_mb" in resources and "gpu_memory_total_mb" in resources


async def test_unknown_model_envelope_names_alternatives(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{BASE}/inference/completion",
        json={"model_id": "codellama-13b", "context": {"code": "x", "cursor_position": 1}},
    )
    error = assert_envelope(response, 404, "MODEL_NOT_FOUND")
    assert error["message"] == "Requested model 'codellama-13b' is not available"
    details = error["details"]
    assert "tiny-codellama" in details["available_models"]
    assert details["suggestion"].startswith("Use '")


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"max_tokens": -1}, "parameters.max_tokens"),
        ({"max_tokens": 2**31}, "parameters.max_tokens"),
        ({"top_p": 1.5}, "parameters.top_p"),
        ({"temperature": -0.1}, "parameters.temperature"),
        ({"frequency_penalty": 9}, "parameters.frequency_penalty"),
        ({"max_token": 5}, "parameters.max_token"),
    ],
)
async def test_out_of_range_parameters_name_the_field(
    client: httpx.AsyncClient, parameters: dict[str, object], field: str
) -> None:
    response = await client.post(
        f"{BASE}/inference/completion",
        json={"model_id": "tiny-qwen", "context": {"code": "x = "}, "parameters": parameters},
    )
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert error["details"]["field"] == field


async def test_bad_code_and_positions(client: httpx.AsyncClient, engine: Engine) -> None:
    url = f"{BASE}/inference/completion"
    negative = await client.post(
        url, json={"model_id": "tiny-qwen", "context": {"code": "x", "cursor_position": -5}}
    )
    assert assert_envelope(negative, 422, "VALIDATION_ERROR")["details"]["field"] == (
        "context.cursor_position"
    )
    nul = await client.post(
        url, json={"model_id": "tiny-qwen", "context": {"code": "a\u0000b", "cursor_position": 1}}
    )
    assert assert_envelope(nul, 400, "INVALID_REQUEST")["details"]["field"] == "context.code"
    # A lone surrogate is refused by name, never passed to llama.cpp as invalid UTF-8.
    surrogate = await client.post(
        url,
        content=b'{"model_id": "tiny-qwen", "context": {"code": "x = \\ud800",'
        b' "cursor_position": 5}, "parameters": {"max_tokens": 3}}',
        headers={"Content-Type": "application/json"},
    )
    assert assert_envelope(surrogate, 422, "VALIDATION_ERROR")["details"]["field"] == (
        "context.code"
    )
    invalid_utf8 = await client.post(
        url,
        content=b'{"context": {"code": "\xff\xfe"}}',
        headers={"Content-Type": "application/json"},
    )
    assert invalid_utf8.status_code in (400, 422)
    assert "error" in invalid_utf8.json()
    past_end = await client.post(
        url,
        json={
            "model_id": "tiny-qwen",
            "context": {"language": "rust", "code": "fn main() {", "cursor_position": 12},
            "parameters": {"max_tokens": 3},
        },
    )
    assert past_end.status_code == 200
    assert past_end.json()["completion"]["metadata"]["replace_range"][0] == 11
    huge = await client.post(
        url,
        json={"model_id": "tiny-qwen", "context": {"code": "x" * 1_000_001}},
    )
    assert huge.status_code in (413, 422)
    assert "error" in huge.json()
    # After all that, the server still answers.
    assert (await client.get(f"{BASE}/health")).status_code == 200


async def test_prompt_too_long_for_the_context(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{BASE}/inference/completion",
        json={
            "model_id": "tiny-qwen",
            "context": {"code": "x = 1\n" * 100},
            "parameters": {"max_tokens": 4000},
        },
    )
    assert_envelope(response, 400, "CONTEXT_LENGTH_EXCEEDED")


@pytest.mark.parametrize(
    "path",
    [
        "/models/..%2F..%2Fetc%2Fpasswd/load",
        "/models/%2e%2e/load",
        "/models/%2Fetc%2Fpasswd/load",
        "/models/a%5Cb/load",
        "/models/../../load",
    ],
)
async def test_path_like_model_ids_never_reach_the_filesystem(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(BASE + path)
    assert response.status_code in (400, 404)
    assert "error" in response.json()


async def test_nul_in_a_generation_names_its_field(client: httpx.AsyncClient) -> None:
    for body, field in (
        ({"prompt": "a\x00b"}, "prompt"),
        ({"prompt": "x", "context": {"existing_code": "a\x00b"}}, "context.existing_code"),
    ):
        response = await client.post(
            f"{BASE}/inference/generation", json={"model_id": "tiny-qwen", **body}
        )
        error = assert_envelope(response, 400, "INVALID_REQUEST")
        assert error["details"]["field"] == field


async def test_an_async_request_is_checked_for_nul_before_it_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    for route, body, field in (
        ("completion", {"context": {"code": "a\x00b"}}, "context.code"),
        (
            "generation",
            {"prompt": "x", "context": {"existing_code": "\x00"}},
            "context.existing_code",
        ),
        ("refactor", {"code": "a\x00", "operation": "optimize_performance"}, "code"),
    ):
        response = await client.post(
            f"{BASE}/inference/{route}",
            json={"model_id": "tiny-qwen", "options": {"async": True}, **body},
        )
        error = assert_envelope(response, 400, "INVALID_REQUEST")
        assert error["details"]["field"] == field


async def test_a_completion_is_streamed_or_a_job_not_both(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{BASE}/inference/completion",
        json={"context": {"code": "x = "}, "options": {"stream": True, "async": True}},
    )
    error = assert_envelope(response, 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "options.stream"


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get(f"{BASE}/nope"), 404, "NOT_FOUND")
    assert_envelope(await client.delete(f"{BASE}/health"), 405, "METHOD_NOT_ALLOWED")
    # A trailing slash is another path: no redirect built from the Host header.
    slashed = await client.get(f"{BASE}/health/", headers={"Host": "evil.example"})
    assert_envelope(slashed, 404, "NOT_FOUND")
    assert "location" not in slashed.headers


async def test_oversized_and_malformed_bodies(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    url = f"{BASE}/inference/completion"
    big = b'{"context": {"code": "' + b"x" * (settings.http.max_body_bytes + 10) + b'"}}'
    assert_envelope(
        await client.post(url, content=big, headers={"Content-Type": "application/json"}),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(url, content=deep, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    assert "error" in response.json()
    broken = await client.post(
        url, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code in (400, 422)
    assert (await client.get(f"{BASE}/health")).status_code == 200


async def test_completion_over_a_real_uvicorn_server(
    engine: Engine, services: Services, settings: Settings
) -> None:
    app = create_app(engine, services, settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=auth_headers(settings)
        ) as http:
            response = await http.post(
                f"{BASE}/inference/completion",
                json={
                    "model_id": "tiny-deepseek",
                    "context": {"language": "python", "code": "def f():\n    return "},
                    "parameters": {"max_tokens": 10},
                },
                timeout=60,
            )
            assert response.status_code == 200, response.text
            assert response.json()["completion"]["metadata"]["model_used"] == "tiny-deepseek"
            assert response.headers["X-Request-ID"].startswith("req_")
            # Streaming: token events, then a final event with the full response.
            async with http.stream(
                "POST",
                f"{BASE}/inference/completion",
                json={
                    "model_id": "tiny-deepseek",
                    "context": {"language": "python", "code": "def f():\n    return "},
                    "parameters": {"max_tokens": 10},
                    "options": {"stream": True},
                },
                timeout=60,
            ) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                events = [line async for line in stream.aiter_lines() if line.startswith("event:")]
            assert events[-1] == "event: done"
            assert events.count("event: token") >= 1
    finally:
        server.should_exit = True
        await task


async def test_streamed_done_event_carries_the_full_response(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{BASE}/inference/completion",
        json={
            "model_id": "tiny-qwen",
            "context": {"code": "def g():\n    return "},
            "parameters": {"max_tokens": 8},
            "options": {"stream": True},
        },
    )
    assert response.status_code == 200
    blocks = [b for b in response.text.split("\n\n") if b.strip()]
    kinds = [b.splitlines()[0] for b in blocks]
    assert kinds[-1] == "event: done"
    done = json.loads(blocks[-1].splitlines()[1].removeprefix("data: "))
    tokens = "".join(
        json.loads(b.splitlines()[1].removeprefix("data: "))["text"]
        for b in blocks
        if b.startswith("event: token")
    )
    assert done["completion"]["metadata"]["completion_tokens"] == 8
    # Deltas are the raw model text; the final text is that text post-processed.
    assert tokens.startswith(done["completion"]["text"].rstrip()[:3])


@pytest.mark.parametrize("stream", [False, True])
async def test_errors_before_the_first_token_use_their_status_code(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """A streamed request that cannot start is refused like the same request unstreamed."""
    too_long = {
        "model_id": "tiny-qwen",
        "context": {"code": "total = total + 1; " * 2000},
        "parameters": {"max_tokens": 8},
        "options": {"stream": stream},
    }
    assert_envelope(
        await client.post(f"{BASE}/inference/completion", json=too_long),
        400,
        "CONTEXT_LENGTH_EXCEEDED",
    )
    unknown = {
        "model_id": "no-such-model",
        "context": {"code": "x = "},
        "options": {"stream": stream},
    }
    assert_envelope(
        await client.post(f"{BASE}/inference/completion", json=unknown), 404, "MODEL_NOT_FOUND"
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"context": {"code": "x = "}, "context": {"code": "y = "}}', "more than once"),
        (b'{"context": {"code": "x"}, "parameters": ' + b"[" * 80 + b"]" * 80 + b"}", "deeper"),
        (b"this is not json", "not valid JSON"),
        (b'{"context": {"code": "x"}, "parameters": {"temperature": NaN}}', "NaN is not"),
        (b'{"context": {"code": "x"}, "parameters": {"top_p": -Infinity}}', "-Infinity is"),
    ],
)
async def test_ambiguous_or_malformed_json_is_a_bad_request(
    client: httpx.AsyncClient, raw: bytes, why: str
) -> None:
    response = await client.post(
        f"{BASE}/inference/completion", content=raw, headers={"Content-Type": "application/json"}
    )
    error = assert_envelope(response, 400, "BAD_REQUEST")
    assert why in error["message"]


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("application/json; charset=utf-8", True),
        ("application/merge-patch+json", True),
        (None, True),
    ],
)
async def test_a_body_is_taken_as_json_only_when_sent_as_json(
    client: httpx.AsyncClient, content_type: str | None, accepted: bool
) -> None:
    raw = b'{"model_id": "tiny-qwen", "context": {"code": "x = "}, "parameters": {"max_tokens": 1}}'
    request = client.build_request("POST", f"{BASE}/inference/completion", content=raw)
    request.headers.pop("Content-Type", None)  # raw content: httpx names no type
    if content_type is not None:
        request.headers["Content-Type"] = content_type
    response = await client.send(request)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        error = assert_envelope(response, 400, "BAD_REQUEST")
        assert f"not {content_type}" in error["message"]


async def test_stop_sequences_are_bounded_in_length(client: httpx.AsyncClient) -> None:
    # Each is checked against the text's tail after every token, on the
    # model's decode thread that every request to the model shares.
    for route, body in (
        ("completion", {"context": {"code": "x = "}}),
        ("generation", {"prompt": "x"}),
    ):
        response = await client.post(
            f"{BASE}/inference/{route}",
            json={"model_id": "tiny-qwen", **body, "parameters": {"stop_sequences": ["x" * 257]}},
        )
        error = assert_envelope(response, 422, "VALIDATION_ERROR")
        assert error["details"]["field"].startswith("parameters.stop_sequences")
    fits = await client.post(
        f"{BASE}/inference/completion",
        json={
            "model_id": "tiny-qwen",
            "context": {"code": "x = "},
            "parameters": {"max_tokens": 2, "stop_sequences": ["y" * 256, ""]},
        },
    )
    assert fits.status_code == 200, fits.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parameters.max_tokens", True),
        ("parameters.max_tokens", "4"),
        ("options.stream", "yes"),
        ("parameters.temperature", "0.2"),
    ],
)
async def test_wire_types_are_strict(client: httpx.AsyncClient, field: str, value: object) -> None:
    """No coercion: ``true`` is not 1 and ``"4"`` is not 4."""
    body: dict[str, Any] = {"model_id": "tiny-qwen", "context": {"code": "x = "}}
    section, name = field.split(".")
    body[section] = {name: value}
    response = await client.post(f"{BASE}/inference/completion", json=body)
    assert_envelope(response, 422, "VALIDATION_ERROR")


async def test_huge_text_is_refused_before_it_is_tokenized(client: httpx.AsyncClient) -> None:
    """A 120 KB cursor line, or existing code far past the context: 400 by characters."""
    line = "value = value + 1; " * 6400
    completion = await client.post(
        f"{BASE}/inference/completion",
        json={"model_id": "tiny-qwen", "context": {"code": line}},
    )
    error = assert_envelope(completion, 400, "CONTEXT_LENGTH_EXCEEDED")
    assert "characters" in error["message"]
    generation = await client.post(
        f"{BASE}/inference/generation",
        json={
            "model_id": "tiny-qwen",
            "prompt": "add a docstring",
            "context": {"existing_code": "x = 1\n" * 40_000},
        },
    )
    error = assert_envelope(generation, 400, "CONTEXT_LENGTH_EXCEEDED")
    assert error["details"]["field"] == "context.existing_code"


async def test_an_idle_connection_outlives_a_clients_keep_alive(
    engine: Engine, services: Services, settings: Settings
) -> None:
    """A request on a connection idle for 6 s is answered on that connection.

    Clients keep idle connections 4-5 s (httpx, Node); a server that closes
    them at 5 s races a client's next request into a connection reset.
    """
    server = runner.uvicorn_server(engine, services, settings, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        headers = "".join(f"{k}: {v}\r\n" for k, v in auth_headers(settings).items())
        request = f"GET {BASE}/health HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n".encode()
        for pause in (0.0, 6.0):
            await asyncio.sleep(pause)
            writer.write(request)
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 10)
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
        writer.close()
    finally:
        server.should_exit = True
        await task
