"""The synchronous client, :class:`AIIDE`, and its resources."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, Literal, Protocol, TypeVar, overload

import httpx

from ai_ide import wire
from ai_ide.client import _calls
from ai_ide.client._core import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    Call,
    ClientOptions,
    RetryInfo,
    after_connect_failure,
    make_options,
    parse_retry_after,
    retry_delay,
    status_error,
    stream_error,
)
from ai_ide.client._sse import SSEDecoder
from ai_ide.client.errors import APIConnectionError, APITimeoutError, StreamEndedError
from ai_ide.client.webhooks import DEFAULT_TOLERANCE_SECONDS, verify_webhook

T = TypeVar("T")


class _Page(Protocol):
    @property
    def pagination(self) -> wire.Pagination: ...


P = TypeVar("P", bound=_Page)


class Stream:
    """Token events of a streamed completion; closing it stops the generation.

    Iterate for :class:`~ai_ide.wire.TokenEvent` deltas; once the stream
    ends, ``completion`` holds the full response (the ``done`` event).
    Leaving early (``close()``, ``break`` inside ``with``) closes the
    connection, and the server stops generating between two tokens.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.completion: wire.CompletionResponse | None = None
        self._events = self._iterate()

    def _iterate(self) -> Generator[wire.TokenEvent, None, None]:
        decoder = SSEDecoder()
        try:
            for line in self.response.iter_lines():
                event = decoder.feed(line)
                if event is None:
                    continue
                if event.event == "token":
                    yield wire.TokenEvent.model_validate(event.data)
                elif event.event == "done":
                    self.completion = wire.CompletionResponse.model_validate(event.data)
                    return
                elif event.event == "error":
                    raise stream_error(event.data)
        except httpx.TimeoutException as exc:
            raise APITimeoutError(str(exc)) from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(str(exc)) from exc
        finally:
            self.response.close()
        raise StreamEndedError("the stream ended without a done event")

    def __iter__(self) -> Iterator[wire.TokenEvent]:
        return self._events

    def __next__(self) -> wire.TokenEvent:
        return next(self._events)

    def final(self) -> wire.CompletionResponse:
        """Read the rest of the stream and return the full response."""
        for _ in self._events:
            pass
        if self.completion is None:
            raise StreamEndedError("the stream ended without a done event")
        return self.completion

    def close(self) -> None:
        """Close the connection: the server cancels the generation."""
        self._events.close()
        self.response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AIIDE:
    """A client of the AI Services API (``ai-ide serve`` or an editor's sidecar).

    Credentials come from ``api_key``, else ``$AI_IDE_API_KEY``, else the key
    file a local server writes (``key_file``, default
    ``$AI_IDE_DATA_DIR/api-key`` or ``~/.local/share/ai-ide/api-key``); a JWT
    from ``bearer_token`` or ``$AI_IDE_TOKEN``. ``base_url`` defaults to
    ``$AI_IDE_BASE_URL``, else ``http://127.0.0.1:8765/v1``. Answers of 429
    and 503 are retried up to ``max_retries`` times, honouring
    ``Retry-After``; every other error raises its typed exception.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        bearer_token: str | None = None,
        key_file: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        on_retry: Callable[[RetryInfo], None] | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        _options: ClientOptions | None = None,
    ) -> None:
        self.options = _options or make_options(
            api_key=api_key,
            base_url=base_url,
            bearer_token=bearer_token,
            key_file=key_file,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
            on_retry=on_retry,
            headers=headers,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client()
        self._sleep: Callable[[float], None] = time.sleep
        self.ai = AI(self)

    @property
    def base_url(self) -> str:
        """The API root, ending in ``/v1``."""
        return self.options.base_url

    def with_options(self, **changes: Any) -> AIIDE:
        """A client with some options changed (``timeout``, ``max_retries``, ...), same pool."""
        if "timeout" in changes and not isinstance(changes["timeout"], httpx.Timeout):
            changes["timeout"] = httpx.Timeout(changes["timeout"])
        copy = AIIDE(http_client=self._http, _options=dataclasses.replace(self.options, **changes))
        copy._owns_http = False
        return copy

    def close(self) -> None:
        """Close the connection pool (if this client created it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> AIIDE:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, call: Call[Any]) -> httpx.Response:
        """Send with retries; the answer is open (streamed) and successful."""
        request = self._http.build_request(
            call.method,
            self.options.base_url + call.path,
            json=call.json,
            params=call.params,
            headers={**self.options.auth_headers(), **(call.headers or {})},
            timeout=self.options.timeout,
        )
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise APITimeoutError(f"{call.method} {call.path}: {exc}") from exc
            except httpx.ConnectError as exc:
                # Not sent: nothing listens (yet), so trying again does no work twice.
                attempt += 1
                self._sleep(after_connect_failure(self.options, attempt, call, exc))
                continue
            except httpx.TransportError as exc:
                raise APIConnectionError(f"{call.method} {call.path}: {exc}") from exc
            if response.is_success:
                return response
            content = response.read()
            response.close()
            attempt += 1
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = retry_delay(self.options, attempt, response.status_code, retry_after)
            error = status_error(response, content)
            if delay is None:
                raise error
            if self.options.on_retry is not None:
                self.options.on_retry(
                    RetryInfo(attempt, delay, response.status_code, error.code, retry_after)
                )
            self._sleep(delay)

    def _execute(self, call: Call[T]) -> T:
        response = self._send(call)
        try:
            response.read()
        finally:
            response.close()
        if call.text:
            return call.parse(response.text)
        return call.parse(response.json() if response.content else None)

    def _stream(self, call: Call[Any]) -> Stream:
        return Stream(self._send(call))


class _Resource:
    def __init__(self, client: AIIDE) -> None:
        self._client = client


def _pages(
    fetch: Callable[[int, int], P], items: Callable[[P], list[T]], page_size: int
) -> Iterator[T]:
    offset = 0
    while True:
        page = fetch(page_size, offset)
        batch = items(page)
        yield from batch
        if not page.pagination.has_more or not batch:
            return
        offset += len(batch)


class Models(_Resource):
    """``client.ai.models``: list, load, unload."""

    def list(self, *, limit: int | None = None, offset: int | None = None) -> wire.ModelList:
        """One page of the catalog with live status."""
        return self._client._execute(_calls.models_list(limit, offset))

    def iter(self, *, page_size: int = 100) -> Iterator[wire.ModelEntry]:
        """Every model, page after page."""
        return _pages(lambda n, o: self.list(limit=n, offset=o), lambda p: p.models, page_size)

    def get(self, model_id: str) -> wire.ModelEntry:
        """One model's entry; ``KeyError`` if the catalog has no such id."""
        for model in self.iter():
            if model.id == model_id:
                return model
        raise KeyError(model_id)

    def load(
        self, model_id: str, body: _calls.LoadInput = None, /, **fields: Any
    ) -> wire.LoadResponse:
        """Queue a load (``priority``, ``timeout_seconds``, ``force_reload``)."""
        return self._client._execute(_calls.model_load(model_id, body, fields))

    def wait_until_loaded(
        self, model_id: str, *, max_wait: float = 300.0, poll_interval: float = 0.25
    ) -> wire.ModelEntry:
        """Poll until the model's status is no longer ``loading``; returns its entry."""
        deadline = time.monotonic() + max_wait
        while True:
            model = self.get(model_id)
            if model.status != "loading":
                return model
            if time.monotonic() > deadline:
                raise TimeoutError(f"model {model_id} still loading after {max_wait} s")
            self._client._sleep(poll_interval)

    def unload(self, model_id: str) -> wire.UnloadResponse:
        """Free a model's memory; reports what was measured."""
        return self._client._execute(_calls.model_unload(model_id))


class Inference(_Resource):
    """``client.ai.inference``: completion, generation, refactor."""

    @overload
    def completion(
        self,
        body: _calls.CompletionInput = None,
        /,
        *,
        stream: Literal[False] = False,
        background: Literal[False] = False,
        extra_headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> wire.CompletionResponse: ...

    @overload
    def completion(
        self,
        body: _calls.CompletionInput = None,
        /,
        *,
        stream: Literal[True],
        background: Literal[False] = False,
        extra_headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Stream: ...

    @overload
    def completion(
        self,
        body: _calls.CompletionInput = None,
        /,
        *,
        stream: Literal[False] = False,
        background: Literal[True],
        extra_headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> wire.JobAccepted: ...

    def completion(
        self,
        body: _calls.CompletionInput = None,
        /,
        *,
        stream: bool = False,
        background: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> wire.CompletionResponse | Stream | wire.JobAccepted:
        """Complete code at a cursor: ``context={"code", "cursor_position", ...}``.

        ``stream=True`` returns a :class:`Stream` of token events;
        ``background=True`` runs it as a job (see ``client.ai.jobs.wait``).
        """
        call = _calls.completion(
            body, fields, stream=stream, background=background, headers=extra_headers
        )
        if call.stream:
            return self._client._stream(call)
        result: wire.CompletionResponse | wire.JobAccepted = self._client._execute(call)
        return result

    @overload
    def generation(
        self,
        body: _calls.GenerationInput = None,
        /,
        *,
        background: Literal[False] = False,
        **fields: Any,
    ) -> wire.GenerationResponse: ...

    @overload
    def generation(
        self, body: _calls.GenerationInput = None, /, *, background: Literal[True], **fields: Any
    ) -> wire.JobAccepted: ...

    def generation(
        self, body: _calls.GenerationInput = None, /, *, background: bool = False, **fields: Any
    ) -> wire.GenerationResponse | wire.JobAccepted:
        """Generate code from a description (``prompt``, ``context``, ``parameters``)."""
        result: wire.GenerationResponse | wire.JobAccepted = self._client._execute(
            _calls.generation(body, fields, background)
        )
        return result

    @overload
    def refactor(
        self,
        body: _calls.RefactorInput = None,
        /,
        *,
        background: Literal[False] = False,
        **fields: Any,
    ) -> wire.RefactorResponse: ...

    @overload
    def refactor(
        self, body: _calls.RefactorInput = None, /, *, background: Literal[True], **fields: Any
    ) -> wire.JobAccepted: ...

    def refactor(
        self, body: _calls.RefactorInput = None, /, *, background: bool = False, **fields: Any
    ) -> wire.RefactorResponse | wire.JobAccepted:
        """Refactor with safety checks (``code``, ``operation``, ``context``, ...)."""
        result: wire.RefactorResponse | wire.JobAccepted = self._client._execute(
            _calls.refactor(body, fields, background)
        )
        return result


class Orchestration(_Resource):
    """``client.ai.orchestration``."""

    def inference(
        self, body: _calls.OrchestrationInput = None, /, **fields: Any
    ) -> wire.OrchestrationResponse:
        """Run one task on several models and choose (``models``, ``strategy``, ``task``)."""
        return self._client._execute(_calls.orchestration(body, fields))


class Batch(_Resource):
    """``client.ai.batch``."""

    def inference(
        self, body: _calls.BatchInput = None, /, *, background: bool = False, **fields: Any
    ) -> wire.BatchResponse:
        """Run many requests (``requests=[...]``); ``background=True`` returns at once."""
        return self._client._execute(_calls.batch(body, fields, background))

    def get(self, batch_id: str) -> wire.BatchResponse:
        """A stored batch: its results once finished, else its status."""
        return self._client._execute(_calls.batch_get(batch_id))

    def wait(
        self, batch_id: str, *, max_wait: float = 600.0, poll_interval: float = 0.5
    ) -> wire.BatchResponse:
        """Poll a background batch until it finishes."""
        deadline = time.monotonic() + max_wait
        while True:
            batch = self.get(batch_id)
            if batch.status in wire.BATCH_TERMINAL_STATUSES:
                return batch
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {batch.status} after {max_wait} s")
            self._client._sleep(poll_interval)


class Jobs(_Resource):
    """``client.ai.jobs``."""

    def get(self, job_id: str) -> wire.JobStatusResponse:
        """A job's status and, once completed, the synchronous call's body."""
        return self._client._execute(_calls.job_get(job_id))

    def wait(
        self, job_id: str, *, max_wait: float = 600.0, poll_interval: float = 0.5
    ) -> wire.JobStatusResponse:
        """Poll until the job is completed or failed (``TimeoutError`` after ``max_wait``)."""
        deadline = time.monotonic() + max_wait
        while True:
            job = self.get(job_id)
            if job.status in wire.JOB_TERMINAL_STATUSES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {max_wait} s")
            self._client._sleep(poll_interval)


class Monitoring(_Resource):
    """``client.ai.monitoring``."""

    def metrics(
        self, model_id: str, *, start: str | None = None, end: str | None = None
    ) -> wire.ModelMetricsResponse:
        """Recorded figures of a model within ``[start, end]`` (RFC 3339)."""
        return self._client._execute(_calls.metrics(model_id, start, end))

    def prometheus(self) -> str:
        """The same counters in Prometheus text format."""
        return self._client._execute(_calls.prometheus())


class Webhooks(_Resource):
    """``client.ai.webhooks``: subscriptions, their delivery log, and verification."""

    def create(self, body: _calls.WebhookInput = None, /, **fields: Any) -> wire.WebhookEntry:
        """Subscribe a receiver (``url``, ``events``, ``secret``)."""
        return self._client._execute(_calls.webhook_create(body, fields))

    def list(self, *, limit: int | None = None, offset: int | None = None) -> wire.WebhookList:
        """One page of your subscriptions."""
        return self._client._execute(_calls.webhook_list(limit, offset))

    def iter(self, *, page_size: int = 100) -> Iterator[wire.WebhookEntry]:
        """All your subscriptions, page after page."""
        return _pages(lambda n, o: self.list(limit=n, offset=o), lambda p: p.webhooks, page_size)

    def get(self, webhook_id: str) -> wire.WebhookEntry:
        """One subscription."""
        return self._client._execute(_calls.webhook_get(webhook_id))

    def delete(self, webhook_id: str) -> None:
        """Delete a subscription with its delivery log."""
        self._client._execute(_calls.webhook_delete(webhook_id))

    def deliveries(
        self,
        webhook_id: str,
        *,
        status: wire.DeliveryStatus | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> wire.DeliveryList:
        """One page of a subscription's delivery log, newest first."""
        return self._client._execute(_calls.webhook_deliveries(webhook_id, status, limit, offset))

    def iter_deliveries(
        self, webhook_id: str, *, status: wire.DeliveryStatus | None = None, page_size: int = 100
    ) -> Iterator[wire.DeliveryEntry]:
        """The whole delivery log, page after page."""
        return _pages(
            lambda n, o: self.deliveries(webhook_id, status=status, limit=n, offset=o),
            lambda p: p.deliveries,
            page_size,
        )

    def redeliver(self, webhook_id: str, delivery_id: str) -> wire.DeliveryEntry:
        """Send a delivery again under the same event id."""
        return self._client._execute(_calls.webhook_redeliver(webhook_id, delivery_id))

    @staticmethod
    def verify(
        secret: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    ) -> wire.WebhookPayload:
        """Check a delivery's signatures and freshness (see :func:`verify_webhook`)."""
        return verify_webhook(secret, headers, body, tolerance_seconds=tolerance_seconds)


class AI:
    """``client.ai``: every resource of the API."""

    def __init__(self, client: AIIDE) -> None:
        self._client = client
        self.models = Models(client)
        self.inference = Inference(client)
        self.orchestration = Orchestration(client)
        self.batch = Batch(client)
        self.jobs = Jobs(client)
        self.monitoring = Monitoring(client)
        self.webhooks = Webhooks(client)

    def health(self) -> wire.HealthResponse:
        """Service health with CPU, memory and GPU figures."""
        return self._client._execute(_calls.health())

    def refactor(
        self, body: _calls.RefactorInput = None, /, **fields: Any
    ) -> wire.RefactorResponse:
        """Shortcut for ``inference.refactor`` (as in the API documentation's example)."""
        return self.inference.refactor(body, background=False, **fields)

    def completion(
        self, body: _calls.CompletionInput = None, /, **fields: Any
    ) -> wire.CompletionResponse:
        """Shortcut for ``inference.completion`` without streaming."""
        return self.inference.completion(body, stream=False, background=False, **fields)
