"""The webhook retry policy and signatures, as plain values: no SQLite, no HTTP."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.webhooks.retry import (
    AttemptResult,
    Decision,
    RetryPolicy,
    backoff_delay,
    retry_after_seconds,
)
from services.webhooks.signing import (
    build_body,
    canonical_json,
    payload_signature,
    standard_signature,
)

NOW = 1_758_038_251.0  # 2025-09-16T15:57:31Z
POLICY = RetryPolicy(
    max_attempts=4,
    backoff_base_seconds=5.0,
    backoff_max_seconds=60.0,
    retry_after_max_seconds=120.0,
    disable_after_failures=3,
)


def decide(
    result: AttemptResult,
    attempts_before: int = 0,
    consecutive_failures: int = 0,
    *,
    active: bool = True,
    policy: RetryPolicy = POLICY,
    seed: int = 7,
) -> Decision:
    return policy.decide(
        result,
        attempts_before=attempts_before,
        consecutive_failures=consecutive_failures,
        now=NOW,
        rng=random.Random(seed),
        subscription_active=active,
    )


def http_date(seconds_from_now: float) -> str:
    return format_datetime(
        datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=seconds_from_now), usegmt=True
    )


# -- backoff ---------------------------------------------------------------------


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    rng = random.Random(1)
    for attempts in range(1, 12):
        ceiling = min(60.0, 5.0 * 2 ** (attempts - 1))
        delays = [backoff_delay(attempts, 5.0, 60.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: spread over the whole range, not bunched at the ceiling.
        assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9


def test_backoff_is_reproducible_with_a_seed_and_capped_for_huge_attempts() -> None:
    first = [backoff_delay(n, 5.0, 60.0, random.Random(42)) for n in range(1, 8)]
    again = [backoff_delay(n, 5.0, 60.0, random.Random(42)) for n in range(1, 8)]
    assert first == again
    rng = random.Random(3)
    assert all(0.0 <= backoff_delay(10_000, 5.0, 60.0, rng) <= 60.0 for _ in range(100))


def test_backoff_first_attempt_is_bounded_by_base() -> None:
    rng = random.Random(9)
    assert all(backoff_delay(1, 5.0, 3600.0, rng) <= 5.0 for _ in range(100))
    assert all(backoff_delay(0, 5.0, 3600.0, rng) <= 5.0 for _ in range(100))


# -- Retry-After -------------------------------------------------------------------


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    assert retry_after_seconds("7", NOW) == 7.0
    assert retry_after_seconds(" 120 ", NOW) == 120.0
    assert retry_after_seconds(http_date(30), NOW) == pytest.approx(30.0)
    assert retry_after_seconds(http_date(-30), NOW) == 0.0  # a date in the past: now
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds("-5", NOW) is None
    assert retry_after_seconds("", NOW) is None
    assert retry_after_seconds(None, NOW) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_for_429_and_503(status: int) -> None:
    decision = decide(AttemptResult(status_code=status, retry_after="30"))
    assert decision.outcome == "retry" and decision.retry_at == NOW + 30.0
    assert decision.status_code == status and decision.error == f"HTTP {status}"
    dated = decide(AttemptResult(status_code=status, retry_after=http_date(45)))
    assert dated.retry_at == pytest.approx(NOW + 45.0)


def test_retry_after_is_capped() -> None:
    decision = decide(AttemptResult(status_code=429, retry_after="86400"))
    assert decision.retry_at == NOW + POLICY.retry_after_max_seconds
    dated = decide(AttemptResult(status_code=503, retry_after=http_date(86400)))
    assert dated.retry_at == NOW + POLICY.retry_after_max_seconds


def test_retry_after_is_ignored_when_unusable_or_for_other_statuses() -> None:
    backoff_ceiling = NOW + POLICY.backoff_base_seconds
    for result in (
        AttemptResult(status_code=429),
        AttemptResult(status_code=429, retry_after="later"),
        AttemptResult(status_code=500, retry_after="100"),
    ):
        decision = decide(result)
        assert decision.outcome == "retry"
        assert decision.retry_at is not None and NOW <= decision.retry_at <= backoff_ceiling


# -- outcomes ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_delivers_and_resets_the_streak(status: int) -> None:
    decision = decide(AttemptResult(status_code=status), attempts_before=2, consecutive_failures=2)
    assert decision == Decision("delivered", 3, status, None, consecutive_failures=0)


def test_2xx_delivers_even_for_a_subscription_disabled_meanwhile() -> None:
    assert decide(AttemptResult(status_code=200), active=False).outcome == "delivered"


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (AttemptResult(status_code=500), "HTTP 500"),
        (AttemptResult(status_code=502), "HTTP 502"),
        (AttemptResult(status_code=404), "HTTP 404"),
        (AttemptResult(status_code=302), "HTTP 302 (redirects are not followed)"),
        (AttemptResult(error="timed out after 10 s"), "timed out after 10 s"),
        (AttemptResult(error="ConnectError: refused"), "ConnectError: refused"),
        (AttemptResult(), "failed"),
    ],
)
def test_failures_retry_with_backoff_until_max_attempts_then_fail(
    result: AttemptResult, error: str
) -> None:
    for before in range(POLICY.max_attempts - 1):
        decision = decide(result, attempts_before=before, seed=before)
        ceiling = min(
            POLICY.backoff_max_seconds, POLICY.backoff_base_seconds * 2**before
        )  # attempts = before + 1
        assert decision.outcome == "retry" and decision.attempts == before + 1
        assert decision.error == error and decision.status_code == result.status_code
        assert decision.retry_at is not None and NOW <= decision.retry_at <= NOW + ceiling
        assert decision.consecutive_failures == 0  # a retry is not a failed delivery
        assert decision.retry_at == NOW + backoff_delay(
            before + 1,
            POLICY.backoff_base_seconds,
            POLICY.backoff_max_seconds,
            random.Random(before),
        )
    last = decide(result, attempts_before=POLICY.max_attempts - 1)
    assert last.outcome == "failed" and last.attempts == POLICY.max_attempts
    assert last.error == error and last.retry_at is None
    assert last.consecutive_failures == 1


def test_429_fails_too_once_attempts_are_exhausted() -> None:
    decision = decide(
        AttemptResult(status_code=429, retry_after="5"), attempts_before=POLICY.max_attempts - 1
    )
    assert decision.outcome == "failed"


def test_410_disables_the_subscription_at_once() -> None:
    decision = decide(AttemptResult(status_code=410), consecutive_failures=1)
    assert decision.outcome == "disable" and decision.attempts == 1
    assert decision.status_code == 410 and decision.error == "HTTP 410"
    assert decision.disable_reason is not None and "410" in decision.disable_reason
    assert decision.consecutive_failures == 1  # a request to stop, not a failure streak


def test_consecutive_failed_deliveries_disable_the_subscription() -> None:
    exhausted = POLICY.max_attempts - 1
    failing = AttemptResult(status_code=500)
    below = decide(failing, attempts_before=exhausted, consecutive_failures=1)
    assert below.outcome == "failed" and below.consecutive_failures == 2
    at = decide(failing, attempts_before=exhausted, consecutive_failures=2)
    assert at.outcome == "disable" and at.consecutive_failures == 3
    assert at.disable_reason == "3 consecutive deliveries failed"
    # Retries in between do not count: only failed deliveries make the streak.
    assert decide(failing, attempts_before=0, consecutive_failures=2).outcome == "retry"


def test_one_attempt_policy_disables_after_the_streak() -> None:
    strict = RetryPolicy(
        max_attempts=1,
        backoff_base_seconds=1.0,
        backoff_max_seconds=1.0,
        retry_after_max_seconds=1.0,
        disable_after_failures=2,
    )
    first = decide(AttemptResult(status_code=500), policy=strict)
    assert first.outcome == "failed" and first.consecutive_failures == 1
    second = decide(AttemptResult(status_code=500), consecutive_failures=1, policy=strict)
    assert second.outcome == "disable"
    assert second.disable_reason == "2 consecutive deliveries failed"


def test_a_subscription_disabled_meanwhile_is_not_retried_nor_disabled_again() -> None:
    decision = decide(AttemptResult(status_code=500), consecutive_failures=5, active=False)
    assert decision.outcome == "failed" and decision.disable_reason is None
    assert decision.consecutive_failures == 6


# -- signatures (vectors computed with openssl from the README's description) ------

SECRET = "test-secret-0123456789"
TIMESTAMP = "2025-09-16T15:57:31Z"
DATA = {"note": "café", "model_id": "tiny-nofim"}
CANONICAL = (
    '{"data":{"model_id":"tiny-nofim","note":"café"},'
    '"event_type":"model_loaded","timestamp":"2025-09-16T15:57:31Z"}'
)
# printf '%s' "$CANONICAL" | openssl dgst -sha256 -hmac "$SECRET"
BODY_SIGNATURE = "sha256=752db377f9cc7468dc08ce6dc4c8128681cbe56718d8af70ce17b3884d700df3"
BODY = (
    '{"data":{"model_id":"tiny-nofim","note":"café"},"event_type":"model_loaded",'
    f'"signature":"{BODY_SIGNATURE}","timestamp":"2025-09-16T15:57:31Z"}}'
).encode()
# printf '%s' "evt_0123.1758038251.$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
HEADER_SIGNATURE = "v1,GFRkxFX5yEf0Yo9CjVwVDihvUq36XY64p5VYyg2PkLU="


def test_canonical_json_sorts_keys_without_spaces_in_utf8() -> None:
    unsigned = {"timestamp": TIMESTAMP, "event_type": "model_loaded", "data": DATA}
    assert canonical_json(unsigned) == CANONICAL.encode("utf-8")
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_payload_signature_matches_the_known_vector() -> None:
    assert payload_signature(SECRET, "model_loaded", TIMESTAMP, DATA) == BODY_SIGNATURE


def test_body_matches_the_known_vector() -> None:
    assert build_body(SECRET, "model_loaded", TIMESTAMP, DATA) == BODY


def test_standard_signature_matches_the_known_vector() -> None:
    assert standard_signature(SECRET, "evt_0123", 1758038251, BODY) == HEADER_SIGNATURE
    assert standard_signature("another-secret-0123", "evt_0123", 1758038251, BODY) != (
        HEADER_SIGNATURE
    )
    assert standard_signature(SECRET, "evt_0124", 1758038251, BODY) != HEADER_SIGNATURE
