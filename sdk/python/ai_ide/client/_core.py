"""What the sync and async clients share: configuration, calls, retries, errors.

Nothing here does I/O, so both clients (and the tests) use the same rules.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from ai_ide.client.errors import APIConnectionError, APIStatusError, error_for
from ai_ide.wire import (
    API_KEY_HEADER,
    ERROR_STATUS,
    RETRYABLE_STATUSES,
    ErrorBody,
    ErrorEnvelope,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8765/v1"
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
# A server asking for a longer pause than this is answered by raising: a
# script should decide to wait minutes, not discover it did.
DEFAULT_MAX_RETRY_AFTER = 60.0
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
# RetryInfo.status_code when no connection could be opened (no answer at all).
NOT_CONNECTED = 0
KEY_FILE_NAME = "api-key"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def default_key_file() -> Path:
    """The key file a local server writes on first start: ``<data_dir>/api-key``.

    The data directory is ``$AI_IDE_DATA_DIR``, else ``$XDG_DATA_HOME/ai-ide``,
    else ``~/.local/share/ai-ide`` (the server's own default).
    """
    data_dir = os.environ.get("AI_IDE_DATA_DIR")
    if not data_dir:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        data_dir = str(Path(base) / "ai-ide")
    return Path(data_dir) / KEY_FILE_NAME


def resolve_api_key(api_key: str | None, key_file: str | os.PathLike[str] | None) -> str | None:
    """The argument, else ``$AI_IDE_API_KEY``, else the running server's key file."""
    if api_key:
        return api_key
    if os.environ.get("AI_IDE_API_KEY"):
        return os.environ["AI_IDE_API_KEY"]
    path = Path(key_file) if key_file is not None else default_key_file()
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def resolve_base_url(base_url: str | None) -> str:
    """The API root ending in ``/v1`` (``http://host:port`` and ``.../v1/ai`` are accepted)."""
    url = base_url or os.environ.get("AI_IDE_BASE_URL") or DEFAULT_BASE_URL
    parts = urlsplit(url.rstrip("/"))
    path = parts.path
    if path.endswith("/v1/ai"):
        path = path[: -len("/ai")]
    elif not path.endswith("/v1"):
        path = f"{path}/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class RetryInfo:
    """Passed to ``on_retry`` before the client sleeps and tries again."""

    attempt: int  # 1 for the first retry
    delay_seconds: float
    status_code: int  # NOT_CONNECTED (0): the connection could not be opened
    code: str | None
    retry_after: float | None  # what the server asked for, if anything


@dataclass(frozen=True)
class ClientOptions:
    """Settings of one client; ``with_options`` copies them with changes."""

    base_url: str
    api_key: str | None
    bearer_token: str | None
    timeout: httpx.Timeout
    max_retries: int
    max_retry_after: float
    on_retry: Callable[[RetryInfo], None] | None
    headers: Mapping[str, str] = field(default_factory=dict)

    def auth_headers(self) -> dict[str, str]:
        """Credentials and fixed headers for every request."""
        headers = {"User-Agent": "ai-ide-python", **self.headers}
        if self.api_key:
            headers[API_KEY_HEADER] = self.api_key
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        return headers


def make_options(
    *,
    api_key: str | None,
    base_url: str | None,
    bearer_token: str | None,
    key_file: str | os.PathLike[str] | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    max_retry_after: float,
    on_retry: Callable[[RetryInfo], None] | None,
    headers: Mapping[str, str] | None,
) -> ClientOptions:
    """Client options from constructor arguments and the environment."""
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    if timeout is None:
        resolved_timeout = DEFAULT_TIMEOUT
    elif isinstance(timeout, httpx.Timeout):
        resolved_timeout = timeout
    else:
        resolved_timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
    return ClientOptions(
        base_url=resolve_base_url(base_url),
        api_key=resolve_api_key(api_key, key_file),
        bearer_token=bearer_token or os.environ.get("AI_IDE_TOKEN") or None,
        timeout=resolved_timeout,
        max_retries=max_retries,
        max_retry_after=max_retry_after,
        on_retry=on_retry,
        headers=dict(headers or {}),
    )


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str  # under the API root, e.g. "/ai/models"
    parse: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    stream: bool = False
    text: bool = False  # the answer is plain text, not JSON


def body_of(model: type[M], body: M | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> M:
    """A request model from a model, a mapping and/or keyword fields (validated here).

    Validation uses the same contract the server validates with, so a typo
    fails before it is sent (pydantic's ``ValidationError``, a ``ValueError``).
    """
    if isinstance(body, model) and not fields:
        return body
    merged: dict[str, Any] = {}
    if isinstance(body, BaseModel):
        merged.update(body.model_dump(by_alias=True, exclude_unset=True))
    elif body is not None:
        merged.update(body)
    merged.update(fields)
    return model.model_validate(merged)


def to_json(body: BaseModel) -> Any:
    """What goes on the wire: only what the caller set, so the server's defaults apply."""
    return body.model_dump(mode="json", by_alias=True, exclude_unset=True)


def parser(model: type[M]) -> Callable[[Any], M]:
    """Parse a JSON answer into ``model``."""
    return model.model_validate


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def retry_delay(
    options: ClientOptions,
    attempt: int,
    status_code: int,
    retry_after: float | None,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1-based), or None: do not retry.

    Only 429 and 503 are retried: the server did not do the work and says so.
    A ``Retry-After`` is honoured as sent (refused when over
    ``max_retry_after``); without one the wait is exponential with jitter
    (half fixed, half random), so that many clients do not retry in step.
    """
    if status_code not in RETRYABLE_STATUSES or attempt > options.max_retries:
        return None
    if retry_after is not None:
        return retry_after if retry_after <= options.max_retry_after else None
    return _backoff(attempt, rng)


def connect_retry_delay(
    options: ClientOptions, attempt: int, rng: Callable[[], float] = random.random
) -> float | None:
    """Seconds before retry ``attempt`` of a call whose connection could not be opened.

    The server never saw the request (refused, unreachable: a server that is
    restarting), so any call may be sent again, after the same backoff as a
    503 without ``Retry-After``; None once the retries are spent.
    """
    return None if attempt > options.max_retries else _backoff(attempt, rng)


def after_connect_failure(
    options: ClientOptions, attempt: int, call: Call[Any], exc: Exception
) -> float:
    """Seconds to sleep before retry ``attempt`` of a call that could not connect.

    Tells the ``on_retry`` hook; raises :class:`APIConnectionError` once the
    retries are spent.
    """
    delay = connect_retry_delay(options, attempt)
    if delay is None:
        raise APIConnectionError(f"{call.method} {call.path}: {exc}") from exc
    if options.on_retry is not None:
        options.on_retry(RetryInfo(attempt, delay, NOT_CONNECTED, None, None))
    return delay


def _backoff(attempt: int, rng: Callable[[], float]) -> float:
    """Exponential with jitter: half fixed, half random, so clients do not retry in step."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2.0 ** (attempt - 1))
    return ceiling / 2 + rng() * ceiling / 2


def envelope_of(status_code: int, content: bytes, request_id: str | None) -> ErrorEnvelope:
    """The error envelope of an answer; a body that is not one is wrapped in one."""
    try:
        return ErrorEnvelope.model_validate(json.loads(content))
    except ValueError:
        text = content[:500].decode("utf-8", "replace")
        return ErrorEnvelope(
            error=ErrorBody(
                code="HTTP_ERROR",
                message=f"HTTP {status_code}: {text}" if text else f"HTTP {status_code}",
                details={},
                timestamp="",
                request_id=request_id or "",
            )
        )


def status_error(response: httpx.Response, content: bytes) -> APIStatusError:
    """The typed exception for an error answer."""
    envelope = envelope_of(response.status_code, content, response.headers.get("X-Request-ID"))
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error_for(response.status_code, envelope, retry_after)


def stream_error(data: Any) -> APIStatusError:
    """The exception for an ``error`` event inside a stream."""
    envelope = ErrorEnvelope.model_validate(data)
    return error_for(ERROR_STATUS.get(envelope.error.code, 500), envelope)


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ones left at None."""
    return {k: v for k, v in params.items() if v is not None}
