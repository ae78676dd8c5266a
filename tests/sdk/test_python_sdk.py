"""The Python SDK (sync ``AIIDE`` and async ``AsyncAIIDE``) against a live ``ai-ide serve``.

Real llama.cpp generation on tiny models; server-side state (health, metrics)
is read back over the API to show what the server did, not only what the
client saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pydantic
import pytest

from ai_ide import AIIDE, AsyncAIIDE, RetryInfo, wire
from ai_ide.client import errors
from tests.support.live_server import LONG_MODEL, LONG_TOKENS, LiveServer
from tests.support.webhook_receiver import Receiver

MODEL = "tiny-qwen"


def long_request(server: LiveServer) -> dict[str, object]:
    """A completion that holds the model for a while here (see find_long_code)."""
    return {
        "model_id": LONG_MODEL,
        "context": {"code": server.long_code},
        "parameters": {"max_tokens": LONG_TOKENS, "stop_sequences": [], "temperature": 0.0},
    }


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[AIIDE]:
    with AIIDE(api_key=live_server.api_key, base_url=live_server.base_url) as sdk:
        yield sdk


def inference_count(client: AIIDE, model_id: str) -> int:
    return client.ai.monitoring.metrics(model_id).metrics.inference_count


def wait_idle(client: AIIDE, seconds: float = 15.0) -> None:
    """Until the server reports no request decoding (its own state, over the API)."""
    deadline = time.monotonic() + seconds
    while client.ai.health().services.inference_engine.active_requests:
        assert time.monotonic() < deadline, "a generation is still running on the server"
        time.sleep(0.02)


def wait_count(client: AIIDE, model_id: str, at_least: int, seconds: float = 15.0) -> int:
    """The model's recorded inference count once it reaches ``at_least`` (records are batched)."""
    deadline = time.monotonic() + seconds
    while (count := inference_count(client, model_id)) < at_least:
        assert time.monotonic() < deadline, f"inference_count stayed {count} < {at_least}"
        time.sleep(0.05)
    return count


def test_completion_is_typed_and_carries_what_the_server_measured(client: AIIDE) -> None:
    result = client.ai.inference.completion(
        model_id=MODEL,
        context={"language": "python", "code": "def area(r):\n    return "},
        parameters={"max_tokens": 6},
    )
    assert isinstance(result, wire.CompletionResponse)
    metadata = result.completion.metadata
    assert metadata.model_used == MODEL
    assert 0 < metadata.completion_tokens <= 6
    assert metadata.timings.total_ms > 0 and metadata.timings.decode_ms >= 0
    assert result.text == result.completion.text == result["completion"].text


def test_generation_refactor_and_background_jobs(client: AIIDE) -> None:
    generation = client.ai.inference.generation(
        model_id=MODEL, prompt="add two numbers", parameters={"max_tokens": 5}
    )
    assert generation.generation.metadata.completion_tokens == 5
    refactoring = client.ai.inference.refactor(
        model_id=MODEL,
        code="fn old_function(x: i32, y: i32) -> i32 { if x > y { x } else { y } }",
        operation="extract_variable",
        context={"language": "rust"},
    )
    assert "let " in refactoring.refactored_code
    accepted = client.ai.inference.completion(
        model_id=MODEL, context={"code": "x = "}, parameters={"max_tokens": 3}, background=True
    )
    assert isinstance(accepted, wire.JobAccepted)
    job = client.ai.jobs.wait(accepted.job_id, max_wait=60)
    assert job.status == "completed"
    assert (
        wire.CompletionResponse.model_validate(job.result).completion.metadata.model_used == MODEL
    )


def test_stream_yields_token_events_then_the_full_response(client: AIIDE) -> None:
    with client.ai.inference.completion(
        model_id=MODEL,
        context={"code": "def f(x):\n    return "},
        parameters={"max_tokens": 12},
        stream=True,
    ) as stream:
        tokens = [event.text for event in stream]
    assert tokens and all(isinstance(t, str) for t in tokens)
    assert stream.completion is not None
    assert 0 < len(tokens) <= stream.completion.completion.metadata.completion_tokens <= 12
    assert "".join(tokens).startswith(stream.completion.completion.metadata.raw_text[:1])


async def test_async_stream_yields_token_events(live_server: LiveServer) -> None:
    async with AsyncAIIDE(api_key=live_server.api_key, base_url=live_server.base_url) as sdk:
        stream = await sdk.ai.inference.completion(
            model_id=MODEL, context={"code": "x = "}, parameters={"max_tokens": 8}, stream=True
        )
        tokens = [event.text async for event in stream]
        assert tokens
        assert stream.completion is not None
        assert (await sdk.ai.health()).status in ("healthy", "degraded")


def _cancelled_generation_is_not_completed(client: AIIDE, before: int) -> None:
    # The server stops decoding (its own active_requests), and the cancelled
    # generation is never recorded as an inference: a short completion run
    # afterwards is the only new record.
    wait_idle(client)
    client.ai.inference.completion(
        model_id=LONG_MODEL, context={"code": "y"}, parameters={"max_tokens": 1}
    )
    assert wait_count(client, LONG_MODEL, before + 1) == before + 1
    time.sleep(0.5)  # a late record of the long generation would show up now
    assert inference_count(client, LONG_MODEL) == before + 1


def test_closing_a_stream_stops_the_generation_on_the_server(
    live_server: LiveServer, client: AIIDE
) -> None:
    start = inference_count(client, LONG_MODEL)
    client.ai.inference.completion(
        model_id=LONG_MODEL, context={"code": "x"}, parameters={"max_tokens": 1}
    )
    before = wait_count(client, LONG_MODEL, start + 1)
    stream = client.ai.inference.completion(long_request(live_server), stream=True)
    received = [next(stream).text for _ in range(3)]
    # Closed at once: the rest of the 1,900 tokens takes the tiny model under a
    # second, and a health round trip first (on a busy CI machine) could let
    # the generation finish before the server hears of the close.
    stream.close()
    assert len(received) == 3 and stream.completion is None
    _cancelled_generation_is_not_completed(client, before)


async def test_closing_an_async_stream_stops_the_generation(
    live_server: LiveServer, client: AIIDE
) -> None:
    before = inference_count(client, LONG_MODEL)
    async with AsyncAIIDE(api_key=live_server.api_key, base_url=live_server.base_url) as sdk:
        stream = await sdk.ai.inference.completion(long_request(live_server), stream=True)
        async with stream:
            count = 0
            async for _ in stream:
                count += 1
                if count == 3:
                    break
        assert (await sdk.ai.health()).services.inference_engine.active_requests <= 1
    await asyncio.to_thread(_cancelled_generation_is_not_completed, client, before)


def test_a_429_is_retried_after_the_servers_retry_after(live_server: LiveServer) -> None:
    # The server allows one inference at a time: a second one is 429 with
    # Retry-After while the first stream holds the slot.
    retries: list[RetryInfo] = []
    holder = AIIDE(api_key=live_server.api_key, base_url=live_server.base_url)
    stream = holder.ai.inference.completion(long_request(live_server), stream=True)
    next(stream)

    def release(info: RetryInfo) -> None:
        retries.append(info)
        stream.close()  # the slot frees while the client waits

    with AIIDE(api_key=live_server.api_key, base_url=live_server.base_url, on_retry=release) as sdk:
        started = time.monotonic()
        result = sdk.ai.inference.completion(
            model_id=MODEL, context={"code": "x = "}, parameters={"max_tokens": 2}
        )
        waited = time.monotonic() - started
    holder.close()
    assert result.completion.metadata.completion_tokens > 0
    assert len(retries) >= 1
    first = retries[0]
    assert (first.status_code, first.code) == (429, "RATE_LIMIT_EXCEEDED")
    assert first.retry_after is not None and first.retry_after >= 1
    assert first.delay_seconds == first.retry_after
    assert waited >= first.retry_after


def test_without_retries_a_429_raises_rate_limit_error_with_the_envelope(
    live_server: LiveServer,
) -> None:
    with (
        AIIDE(api_key=live_server.api_key, base_url=live_server.base_url) as sdk,
        sdk.ai.inference.completion(long_request(live_server), stream=True) as stream,
    ):
        next(stream)
        with pytest.raises(errors.RateLimitError) as caught:
            sdk.with_options(max_retries=0).ai.inference.completion(
                model_id=MODEL, context={"code": "x"}
            )
    error = caught.value
    assert error.status_code == 429 and error.code == "RATE_LIMIT_EXCEEDED"
    assert error.details["policy"] == "concurrency"
    assert error.retry_after == error.details["retry_after_seconds"]
    assert error.request_id.startswith("req_")


async def test_async_client_honours_retry_after_too(live_server: LiveServer) -> None:
    retries: list[RetryInfo] = []
    async with AsyncAIIDE(api_key=live_server.api_key, base_url=live_server.base_url) as holder:
        stream = await holder.ai.inference.completion(long_request(live_server), stream=True)
        await anext(stream)

        def release(info: RetryInfo) -> None:
            retries.append(info)
            asyncio.get_running_loop().create_task(stream.close())

        async with AsyncAIIDE(
            api_key=live_server.api_key, base_url=live_server.base_url, on_retry=release
        ) as sdk:
            result = await sdk.ai.inference.completion(
                model_id=MODEL, context={"code": "x = "}, parameters={"max_tokens": 2}
            )
    assert result.completion.metadata.completion_tokens > 0
    assert retries and retries[0].status_code == 429
    assert retries[0].delay_seconds == retries[0].retry_after


def test_each_error_code_raises_its_own_exception(live_server: LiveServer, client: AIIDE) -> None:
    with pytest.raises(errors.ModelNotFoundError) as missing:
        client.ai.inference.completion(model_id="no-such-model", context={"code": "x"})
    assert MODEL in missing.value.details["available_models"]
    assert isinstance(missing.value, errors.NotFoundError)
    with pytest.raises(errors.UnauthorizedError) as unauthorized:
        AIIDE(api_key="wrong", base_url=live_server.base_url).ai.health()
    assert unauthorized.value.details["reason"] == "malformed_key"
    with pytest.raises(errors.NotFoundError):
        client.ai.jobs.get("job_does_not_exist")
    with pytest.raises(errors.UnsupportedLanguageError):
        client.ai.inference.refactor(
            code="x = 1", operation="rename", context={"language": "cobol"}
        )
    # A typo never leaves the client: the contract validates it first.
    with pytest.raises(pydantic.ValidationError, match="max_token"):
        client.ai.inference.completion(context={"code": "x"}, parameters={"max_token": 3})


def test_models_pagination_load_unload_metrics(client: AIIDE) -> None:
    everything = client.ai.models.list(limit=1000)
    paged = list(client.ai.models.iter(page_size=2))
    assert [m.id for m in paged] == [m.id for m in everything.models]
    assert everything.pagination.total_count == len(paged) > 2
    first = client.ai.models.list(limit=2)
    assert first.pagination.has_more and len(first.models) == 2
    client.ai.models.load("tiny-deepseek", priority="high")
    assert client.ai.models.wait_until_loaded("tiny-deepseek").status == "loaded"
    unloaded = client.ai.models.unload("tiny-deepseek")
    assert unloaded.status == "unloaded" and unloaded.unload_time_ms >= 0
    assert client.ai.models.get("tiny-deepseek").status == "available"
    metrics = client.ai.monitoring.metrics(MODEL)
    assert metrics.metrics.inference_count > 0
    assert "ai_ide_inferences_total" in client.ai.monitoring.prometheus()


def test_batch_and_orchestration(client: AIIDE) -> None:
    batch = client.ai.batch.inference(
        requests=[
            {
                "id": "a",
                "model_id": MODEL,
                "type": "completion",
                "context": {"code": "x = "},
                "parameters": {"max_tokens": 2},
            },
            {
                "id": "b",
                "model_id": MODEL,
                "type": "generation",
                "prompt": "sort a list",
                "parameters": {"max_tokens": 2},
            },
        ]
    )
    assert batch.status == "completed"
    assert [r.request_id for r in batch.results] == ["a", "b"]
    assert client.ai.batch.get(batch.batch_id).status == "completed"
    background = client.ai.batch.inference(
        requests=[
            {
                "id": "c",
                "model_id": MODEL,
                "type": "completion",
                "context": {"code": "y = "},
                "parameters": {"max_tokens": 2},
            }
        ],
        background=True,
    )
    assert client.ai.batch.wait(background.batch_id, max_wait=60).status == "completed"
    orchestration = client.ai.orchestration.inference(
        models=[MODEL, "tiny-starcoder"],
        strategy="best_of_n",
        task={"type": "completion", "context": {"code": "z = "}, "parameters": {"max_tokens": 2}},
    )
    assert len(orchestration.orchestration_result.model_results) == 2


def test_timeouts_raise_api_timeout_error(live_server: LiveServer) -> None:
    # A listener that never answers: the read timeout must fire.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        sdk = AIIDE(api_key="k", base_url=f"http://127.0.0.1:{port}", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(errors.APITimeoutError):
            sdk.ai.health()
        assert time.monotonic() - started < 5
    with pytest.raises(errors.APIConnectionError):
        AIIDE(api_key="k", base_url=f"http://127.0.0.1:{port}", timeout=1).ai.health()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Forwarder:
    """Starts listening on ``port`` when called, relaying each connection to ``target``.

    Used as an ``on_retry`` hook: the first attempt finds nothing listening
    (a server restarting), the retry reaches the live server.
    """

    def __init__(self, port: int, target: str) -> None:
        self.port = port
        host, target_port = target.removeprefix("http://").split(":")
        self.target = (host, int(target_port))
        self.retries: list[RetryInfo] = []
        self._listener: socket.socket | None = None

    def __call__(self, info: RetryInfo) -> None:
        self.retries.append(info)
        if self._listener is None:
            self._listener = socket.create_server(("127.0.0.1", self.port))
            threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.target)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def test_a_connection_refused_is_retried_until_the_server_listens(
    live_server: LiveServer,
) -> None:
    port = _free_port()
    forwarder = _Forwarder(port, live_server.root_url)
    try:
        with AIIDE(
            api_key=live_server.api_key, base_url=f"http://127.0.0.1:{port}/v1", on_retry=forwarder
        ) as sdk:
            result = sdk.ai.inference.completion(
                model_id=MODEL, context={"code": "x = "}, parameters={"max_tokens": 2}
            )
    finally:
        forwarder.close()
    assert result.completion.metadata.completion_tokens > 0
    assert [(r.attempt, r.status_code, r.code) for r in forwarder.retries] == [(1, 0, None)]
    assert 0.25 <= forwarder.retries[0].delay_seconds <= 0.5


def test_a_server_that_never_listens_raises_once_the_retries_are_spent() -> None:
    retries: list[RetryInfo] = []
    sdk = AIIDE(
        api_key="k", base_url=f"http://127.0.0.1:{_free_port()}/v1", on_retry=retries.append
    )
    with pytest.raises(errors.APIConnectionError):
        sdk.ai.health()
    assert [(r.attempt, r.status_code) for r in retries] == [(1, 0), (2, 0)]
    with pytest.raises(errors.APIConnectionError):
        sdk.with_options(max_retries=0).ai.health()
    assert len(retries) == 2  # no retry without retries


async def test_the_async_client_retries_a_refused_connection_too(live_server: LiveServer) -> None:
    port = _free_port()
    forwarder = _Forwarder(port, live_server.root_url)
    try:
        async with AsyncAIIDE(
            api_key=live_server.api_key, base_url=f"http://127.0.0.1:{port}/v1", on_retry=forwarder
        ) as sdk:
            health = await sdk.ai.health()
    finally:
        forwarder.close()
    assert health.status in ("healthy", "degraded")
    assert [(r.attempt, r.status_code) for r in forwarder.retries] == [(1, 0)]


def test_credentials_from_the_environment_and_the_key_file(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_IDE_BASE_URL", live_server.base_url)
    monkeypatch.delenv("AI_IDE_API_KEY", raising=False)
    monkeypatch.setenv("AI_IDE_DATA_DIR", str(live_server.data_dir))
    assert AIIDE().ai.health().services.model_registry.total_models > 0  # the key file
    monkeypatch.setenv("AI_IDE_DATA_DIR", str(live_server.data_dir / "nowhere"))
    monkeypatch.setenv("AI_IDE_API_KEY", live_server.api_key)
    assert AIIDE().ai.health().status in ("healthy", "degraded")
    monkeypatch.delenv("AI_IDE_API_KEY")
    with pytest.raises(errors.UnauthorizedError) as caught:
        AIIDE().ai.health()
    assert caught.value.details["reason"] == "missing_credentials"


def test_webhooks_subscribe_list_deliver_and_verify(client: AIIDE) -> None:
    secret = "a-long-random-shared-secret"
    with Receiver(secret) as receiver:
        entry = client.ai.webhooks.create(
            url=receiver.url, events=["inference_completed"], secret=secret
        )
        assert entry.active and entry.url == receiver.url
        assert entry.id in [w.id for w in client.ai.webhooks.iter(page_size=1)]
        client.ai.inference.completion(
            model_id=MODEL, context={"code": "q = "}, parameters={"max_tokens": 2}
        )
        deadline = time.monotonic() + 20
        while not receiver.seen():
            assert time.monotonic() < deadline, "no webhook delivery arrived"
            time.sleep(0.05)
        delivery = receiver.seen()[0]
        headers, body = delivery.headers, delivery.body
        payload = client.ai.webhooks.verify(secret, headers, body)
        assert payload.event_type == "inference_completed"
        assert payload.data["model_id"] == MODEL
        with pytest.raises(ValueError, match="signature"):
            client.ai.webhooks.verify("another-secret-entirely", headers, body)
        deliveries = list(client.ai.webhooks.iter_deliveries(entry.id))
        assert deliveries and deliveries[0].event_id == headers["webhook-id"]
        client.ai.webhooks.delete(entry.id)
        with pytest.raises(errors.NotFoundError):
            client.ai.webhooks.get(entry.id)
    json.loads(body)  # the body is the JSON the verifier parsed


async def test_the_shared_engine_backend_carries_what_the_server_reported(
    live_server: LiveServer,
) -> None:
    from engine.completion.pipeline import CompletionRequest
    from engine.runtime.messages import Priority, SamplingParams
    from lsp_server.remote_backend import RemoteBackend, RemoteError, probe

    assert await probe(live_server.root_url)
    backend = RemoteBackend(live_server.root_url, live_server.api_key)
    try:
        request = CompletionRequest(
            code="def area(r):\n    return ",
            cursor=24,
            language="python",
            model_id=MODEL,
            params=SamplingParams(max_tokens=6),
            priority=Priority.INTERACTIVE,
        )
        result = await backend.complete(request)
        generation = result.completion.generation
        assert generation.request_id.startswith("req_")
        assert generation.prompt_tokens > 0 and generation.completion_tokens > 0
        # Timings are the server's measurements, not zeros filled in.
        assert generation.first_token_ms > 0 and generation.prompt_ms > 0
        assert generation.total_ms >= generation.decode_ms > 0
        assert result.completion.raw_text
        with pytest.raises(RemoteError) as caught:
            await backend.unload("no-such-model")
        assert caught.value.code == "MODEL_NOT_FOUND" and caught.value.http_status == 404
    finally:
        await backend.close()
