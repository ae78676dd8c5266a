"""The HTTP client every remote engine kind shares: timeouts, retries, a circuit breaker.

- **Timeouts**: a connect timeout from the catalog entry; reads are bounded
  by the request's own deadline (the caller wraps the call in it).
- **Retries** only where repeating cannot do work twice: idempotent calls
  (probes, ``GET``) on any transport failure, and any call whose connection
  was refused or never opened (the request never reached the engine), or
  closed before any answer on a reused keep-alive connection (once). A
  generation that failed after its answer began is not repeated.
- **Circuit breaker**: consecutive failures (no connection, a timeout, a
  5xx, a rejected API key) are counted; at ``breaker_failures`` the breaker
  opens and ``on_open`` says why. The runner then stops serving and the
  registry shows the model ``error`` and probes the engine again with a
  backoff (the half-open state); a success resets the count.

A 4xx for one request is that request's error, not the engine's: it does
not count.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from engine.errors import (
    ContextLengthExceededError,
    EngineError,
    InferenceFailedError,
    RemoteEngineError,
)

log = logging.getLogger(__name__)

# Upstream messages are quoted in our errors, bounded.
_MAX_QUOTED = 300
# Attempts of a retryable call, and the pause before each retry (doubling).
_ATTEMPTS = 3
_RETRY_PAUSE_SECONDS = 0.1


class CircuitBreaker:
    """Counts consecutive failures; opens once at ``threshold`` (not thread-safe: one loop)."""

    def __init__(self, threshold: int, on_open: Callable[[str], None] | None = None) -> None:
        self.threshold = threshold
        self.failures = 0
        self.open_reason: str | None = None
        self._on_open = on_open

    def success(self) -> None:
        """The engine answered: the count starts again."""
        self.failures = 0

    def failure(self, reason: str) -> None:
        """The engine failed; opens the breaker at the threshold."""
        self.failures += 1
        if self.open_reason is None and self.failures >= self.threshold:
            self.open_reason = reason
            log.error("remote engine down after %d failures: %s", self.failures, reason)
            if self._on_open is not None:
                self._on_open(reason)

    def check(self) -> None:
        """Refuse a call at once while the breaker is open."""
        if self.open_reason is not None:
            raise RemoteEngineError(
                f"the remote engine is down: {self.open_reason}",
                {"reason": self.open_reason},
            )


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "..."


def upstream_message(body: bytes) -> str:
    """The error message inside an engine's error body (llama-server, OpenAI, vLLM shapes)."""
    try:
        data = json.loads(body)
    except ValueError:
        return _quote(body.decode("utf-8", "replace"))
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error.get("type")
            if message is not None:
                return _quote(str(message))
        elif isinstance(error, str):
            return _quote(error)
        detail = data.get("detail")
        if detail is not None:
            return _quote(str(detail))
    return _quote(str(data))


class RemoteHttp:
    """One remote engine's base URL, key and connection pool (use on one event loop)."""

    def __init__(
        self,
        base_url: str,
        *,
        label: str,
        api_key: str | None,
        connect_timeout: float,
        read_timeout: float,
        breaker: CircuitBreaker,
        max_connections: int,
    ) -> None:
        self.label = label
        self.host = urlsplit(base_url).netloc
        self.breaker = breaker
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=30.0, pool=read_timeout
            ),
            limits=httpx.Limits(max_connections=max_connections + 2),
            # Loopback and private fleets: no proxy from the environment.
            trust_env=False,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close every connection."""
        await self._client.aclose()

    def _transport_error(self, exc: httpx.TransportError) -> RemoteEngineError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            what = "cannot connect"
        elif isinstance(exc, httpx.TimeoutException):
            what = "timed out"
        else:
            what = f"connection failed ({type(exc).__name__})"
        reason = f"{self.label} at {self.host}: {what}"
        return RemoteEngineError(reason, {"reason": reason})

    def _status_error(self, status: int, body: bytes) -> EngineError:
        """An engine's error answer as ours; counts against the breaker unless it is a 4xx."""
        message = upstream_message(body)
        details: dict[str, Any] = {"upstream_status": status, "upstream_message": message}
        if status in (401, 403):
            reason = f"{self.label} at {self.host} refused the API key ({status})"
            self.breaker.failure(reason)
            return RemoteEngineError(reason, details)
        if status >= 500:
            reason = f"{self.label} at {self.host} answered {status}: {message}"
            self.breaker.failure(reason)
            return RemoteEngineError(reason, details)
        self.breaker.success()
        lowered = message.lower()
        if "context" in lowered and ("exceed" in lowered or "too long" in lowered):
            return ContextLengthExceededError(
                "context", f"{self.label}: {message}", upstream_status=status
            )
        return InferenceFailedError(f"{self.label} refused the request: {message}", details)

    async def call(self, method: str, path: str, body: Any = None, *, idempotent: bool) -> Any:
        """Send one request and return its JSON answer; retried where that is safe."""
        self.breaker.check()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._client.request(method, path, json=body)
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt < _ATTEMPTS and (idempotent or never_sent):
                    await asyncio.sleep(_RETRY_PAUSE_SECONDS * 2 ** (attempt - 1))
                    continue
                error = self._transport_error(exc)
                self.breaker.failure(error.message)
                raise error from exc
            if response.status_code >= 400:
                raise self._status_error(response.status_code, response.content)
            self.breaker.success()
            try:
                return response.json()
            except ValueError as exc:
                raise RemoteEngineError(
                    f"{self.label} at {self.host} answered {path} with something other than JSON"
                ) from exc

    @asynccontextmanager
    async def stream(self, path: str, body: Any) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """POST ``body`` and yield the answer's Server-Sent Events as JSON objects.

        Leaving the block closes the connection, which is how a generation is
        stopped at the engine (llama-server and vLLM abort a request whose
        client went away).
        """
        self.breaker.check()
        attempt = 0
        while True:
            attempt += 1
            request = self._client.build_request("POST", path, json=body)
            try:
                response = await self._client.send(request, stream=True)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt < _ATTEMPTS:  # never reached the engine: safe to repeat
                    await asyncio.sleep(_RETRY_PAUSE_SECONDS * 2 ** (attempt - 1))
                    continue
                error = self._transport_error(exc)
                self.breaker.failure(error.message)
                raise error from exc
            except httpx.RemoteProtocolError as exc:
                # Closed before any answer: most often a pooled keep-alive
                # connection the engine had just dropped (llama-server closes
                # idle ones after 5 s), so once more on a fresh connection.
                if attempt == 1:
                    continue
                error = self._transport_error(exc)
                self.breaker.failure(error.message)
                raise error from exc
            except httpx.TransportError as exc:
                error = self._transport_error(exc)
                self.breaker.failure(error.message)
                raise error from exc
        try:
            if response.status_code >= 400:
                raise self._status_error(response.status_code, await response.aread())
            self.breaker.success()
            yield self._events(response)
        finally:
            await response.aclose()

    async def _events(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # comments, keep-alives, event names
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    event = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    if "error" in event and not event.get("choices"):
                        raise InferenceFailedError(
                            f"{self.label} failed during the generation: "
                            f"{upstream_message(payload.encode())}"
                        )
                    yield event
        except httpx.TransportError as exc:
            error = self._transport_error(exc)
            self.breaker.failure(error.message)
            raise error from exc
