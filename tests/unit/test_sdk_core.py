"""The Python SDK's pure parts: retry policy, Retry-After, SSE, credentials, errors, webhooks."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import httpx
import pytest

from ai_ide import wire
from ai_ide.client import ERROR_CLASSES, WebhookVerificationError, verify_webhook
from ai_ide.client import errors as sdk_errors
from ai_ide.client._core import (
    BACKOFF_MAX_SECONDS,
    body_of,
    connect_retry_delay,
    make_options,
    parse_retry_after,
    resolve_api_key,
    resolve_base_url,
    retry_delay,
    to_json,
)
from ai_ide.client._sse import SSEDecoder
from services.webhooks.signing import build_body, standard_signature


def options(**overrides: object) -> object:
    values: dict[str, object] = {
        "api_key": "k",
        "base_url": None,
        "bearer_token": None,
        "key_file": None,
        "timeout": None,
        "max_retries": 3,
        "max_retry_after": 60.0,
        "on_retry": None,
        "headers": None,
    }
    values.update(overrides)
    return make_options(**values)  # type: ignore[arg-type]


def test_only_429_and_503_are_retried_and_retries_are_bounded() -> None:
    opts = options(max_retries=2)
    for status in (400, 401, 404, 409, 422, 500, 502, 504):
        assert retry_delay(opts, 1, status, None) is None  # type: ignore[arg-type]
    assert retry_delay(opts, 1, 429, None) is not None  # type: ignore[arg-type]
    assert retry_delay(opts, 2, 503, None) is not None  # type: ignore[arg-type]
    assert retry_delay(opts, 3, 503, None) is None  # type: ignore[arg-type]


def test_a_connection_that_could_not_be_opened_is_retried_a_bounded_number_of_times() -> None:
    opts = options(max_retries=2)
    assert connect_retry_delay(opts, 1, lambda: 0.0) == 0.25  # type: ignore[arg-type]
    assert connect_retry_delay(opts, 2, lambda: 1.0) == 1.0  # type: ignore[arg-type]
    assert connect_retry_delay(opts, 3) is None  # type: ignore[arg-type]
    assert connect_retry_delay(options(max_retries=0), 1) is None  # type: ignore[arg-type]


def test_retry_after_is_honoured_as_sent_and_refused_when_too_long() -> None:
    opts = options(max_retry_after=30.0)
    assert retry_delay(opts, 1, 429, 7.0) == 7.0  # type: ignore[arg-type]
    assert retry_delay(opts, 1, 503, 31.0) is None  # type: ignore[arg-type]


def test_backoff_grows_exponentially_with_jitter_within_bounds() -> None:
    opts = options(max_retries=10)
    lows = [retry_delay(opts, n, 429, None, rng=lambda: 0.0) for n in range(1, 8)]  # type: ignore[arg-type]
    highs = [retry_delay(opts, n, 429, None, rng=lambda: 1.0) for n in range(1, 8)]  # type: ignore[arg-type]
    assert lows[:4] == [0.25, 0.5, 1.0, 2.0]
    assert highs[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(h for h in highs if h is not None) == BACKOFF_MAX_SECONDS


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(date, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(0, usegmt=True), now=1e6) == 0.0


def test_sse_decoder_reads_events_comments_and_multiline_data() -> None:
    decoder = SSEDecoder()
    lines = [": keep-alive", "event: token", 'data: {"text":', 'data: "a"}', "", "", "event: done"]
    events = [e for e in (decoder.feed(line) for line in lines) if e is not None]
    assert [(e.event, e.data) for e in events] == [("token", {"text": "a"})]


def test_credentials_come_from_argument_then_environment_then_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "data" / "api-key"
    key_file.parent.mkdir()
    key_file.write_text("from-file\n")
    monkeypatch.setenv("AI_IDE_DATA_DIR", str(key_file.parent))
    monkeypatch.delenv("AI_IDE_API_KEY", raising=False)
    assert resolve_api_key(None, None) == "from-file"
    monkeypatch.setenv("AI_IDE_API_KEY", "from-env")
    assert resolve_api_key(None, None) == "from-env"
    assert resolve_api_key("from-arg", None) == "from-arg"
    monkeypatch.delenv("AI_IDE_API_KEY")
    assert resolve_api_key(None, tmp_path / "missing") is None


def test_base_url_is_the_api_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_IDE_BASE_URL", raising=False)
    assert resolve_base_url(None) == "http://127.0.0.1:8765/v1"
    assert resolve_base_url("http://h:1") == "http://h:1/v1"
    assert resolve_base_url("http://h:1/v1/") == "http://h:1/v1"
    assert resolve_base_url("http://h:1/v1/ai") == "http://h:1/v1"
    monkeypatch.setenv("AI_IDE_BASE_URL", "https://x.example/api/v1")
    assert resolve_base_url(None) == "https://x.example/api/v1"


def test_requests_are_validated_with_the_contract_and_send_only_what_was_set() -> None:
    body = body_of(
        wire.CompletionRequestBody,
        {"context": {"code": "x = "}},
        {"parameters": {"max_tokens": 3}, "options": {"async": True}},
    )
    assert to_json(body) == {
        "context": {"code": "x = "},
        "parameters": {"max_tokens": 3},
        "options": {"async": True},
    }
    with pytest.raises(ValueError, match="max_token"):
        body_of(
            wire.CompletionRequestBody,
            {"context": {"code": ""}, "parameters": {"max_token": 3}},
            {},
        )


def test_every_error_code_has_its_exception_class_carrying_the_envelope() -> None:
    assert set(ERROR_CLASSES) == set(wire.ERROR_CODES)
    envelope = wire.ErrorEnvelope.model_validate(
        {
            "error": {
                "code": "MODEL_NOT_FOUND",
                "message": "no such model",
                "details": {"available_models": ["a"]},
                "timestamp": "2026-01-01T00:00:00Z",
                "request_id": "req_1",
            }
        }
    )
    error = sdk_errors.error_for(404, envelope)
    assert isinstance(error, sdk_errors.ModelNotFoundError)
    assert isinstance(error, sdk_errors.NotFoundError)
    assert (error.code, error.details, error.request_id) == (
        "MODEL_NOT_FOUND",
        {"available_models": ["a"]},
        "req_1",
    )
    unknown = envelope.model_copy(
        update={"error": envelope.error.model_copy(update={"code": "NEW"})}
    )
    assert type(sdk_errors.error_for(429, unknown)) is sdk_errors.RateLimitError
    assert type(sdk_errors.error_for(502, unknown)) is sdk_errors.InternalServerError


SECRET = "a-long-random-shared-secret"


def signed_delivery(timestamp: int = 1_800_000_000) -> tuple[dict[str, str], bytes]:
    """A delivery signed by the server's own signing code."""
    body = build_body(SECRET, "inference_completed", "2026-12-01T12:00:00Z", {"model_id": "m"})
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(SECRET, "evt_1", timestamp, body),
    }
    return headers, body


def test_webhook_verifier_accepts_what_the_server_signs() -> None:
    headers, body = signed_delivery()
    payload = verify_webhook(SECRET, headers, body, now=1_800_000_010)
    assert payload.event_type == "inference_completed"
    assert payload.data == {"model_id": "m"}
    upper = {k.title(): v for k, v in headers.items()}
    assert verify_webhook(SECRET, upper, body, now=1_800_000_010) == payload


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "header", "payload_signature"])
def test_webhook_verifier_rejects_forgeries_and_replays(tamper: str) -> None:
    headers, body = signed_delivery()
    secret, now = SECRET, 1_800_000_010.0
    if tamper == "body":
        body = body.replace(b'"m"', b'"n"')
    elif tamper == "secret":
        secret = "another-secret-of-length"
    elif tamper == "stale":
        now += 3600
    elif tamper == "header":
        del headers["webhook-signature"]
    else:
        # Re-sign the headers over a body whose own signature is wrong.
        raw = json.loads(body)
        raw["signature"] = "sha256=" + "0" * 64
        body = json.dumps(raw).encode()
        headers["webhook-signature"] = standard_signature(SECRET, "evt_1", 1_800_000_000, body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body, now=now)


def test_status_errors_without_an_envelope_still_raise_typed() -> None:
    from ai_ide.client._core import status_error

    response = httpx.Response(502, text="<html>bad gateway</html>")
    error = status_error(response, response.content)
    assert isinstance(error, sdk_errors.InternalServerError)
    assert "bad gateway" in error.message
