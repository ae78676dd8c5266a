"""The retry policy: what one attempt's outcome means for a delivery and its subscription.

Pure: it reads no database, sends nothing and takes the time and the random
source as arguments, so every rule can be tested with plain values. The
outbox applies its :class:`Decision` in the transaction that records the
attempt.

Rules, in order:

- a 2xx answer delivers (and resets the subscription's failure streak);
- 410 Gone fails the delivery and disables the subscription (the receiver
  says it is gone for good);
- any other answer (3xx included: redirects are not followed), a timeout or a
  transport error is retried, after the receiver's ``Retry-After`` for 429
  and 503 (capped) or else after exponential backoff with full jitter, until
  ``max_attempts`` attempts have been made; then the delivery fails, and
  ``disable_after_failures`` failed deliveries in a row disable the
  subscription;
- a failed attempt for a subscription disabled meanwhile is not retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

from engine.config import WebhookSettings

Outcome = Literal["delivered", "retry", "failed", "disable"]

# Statuses whose Retry-After header is honoured (RFC 9110 defines it for both).
RETRY_AFTER_STATUSES = frozenset({429, 503})
GONE = 410


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a delay, or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(n-1))].

    Full jitter spreads retries of many deliveries that failed together (a
    receiver that came back up) instead of sending them in synchronized waves.
    """
    # The exponent is clamped so a large attempt count cannot overflow a float.
    ceiling = min(cap, base * 2.0 ** max(0, min(attempts - 1, 62)))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt got: an HTTP status (with its Retry-After), or an error.

    ``error`` describes an attempt that got no status: a timeout, a transport
    error, a URL refused at delivery.
    """

    status_code: int | None = None
    retry_after: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Decision:
    """What to record for an attempt.

    ``outcome`` is ``delivered``, ``retry`` (at ``retry_at``), ``failed``, or
    ``disable``: the delivery fails and the subscription is disabled for
    ``disable_reason``. ``consecutive_failures`` is the subscription's streak
    of failed deliveries after this attempt.
    """

    outcome: Outcome
    attempts: int
    status_code: int | None
    error: str | None
    consecutive_failures: int
    retry_at: float | None = None
    disable_reason: str | None = None


def describe_failure(result: AttemptResult) -> str:
    """The ``last_error`` text of an attempt that did not deliver."""
    code = result.status_code
    if code is None:
        return result.error or "failed"
    text = f"HTTP {code}"
    if 300 <= code < 400:
        text += " (redirects are not followed)"
    return text


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt limits, backoff and the failure streak that disables a subscription."""

    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    retry_after_max_seconds: float
    disable_after_failures: int

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> RetryPolicy:
        """The policy the webhook settings describe."""
        return cls(
            max_attempts=settings.max_attempts,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_max_seconds=settings.backoff_max_seconds,
            retry_after_max_seconds=settings.retry_after_max_seconds,
            disable_after_failures=settings.disable_after_failures,
        )

    def delay(self, attempts: int, result: AttemptResult, now: float, rng: random.Random) -> float:
        """Seconds before the next attempt, after ``attempts`` attempts ending in ``result``."""
        if result.status_code in RETRY_AFTER_STATUSES:
            asked = retry_after_seconds(result.retry_after, now)
            if asked is not None:
                return min(asked, self.retry_after_max_seconds)
        return backoff_delay(attempts, self.backoff_base_seconds, self.backoff_max_seconds, rng)

    def decide(
        self,
        result: AttemptResult,
        *,
        attempts_before: int,
        consecutive_failures: int,
        now: float,
        rng: random.Random,
        subscription_active: bool = True,
    ) -> Decision:
        """The decision for one attempt of a delivery that had ``attempts_before`` attempts.

        ``consecutive_failures`` is the subscription's streak of failed
        deliveries before this attempt; ``now`` is when the attempt is recorded.
        """
        attempts = attempts_before + 1
        code = result.status_code
        if code is not None and 200 <= code < 300:
            return Decision("delivered", attempts, code, None, consecutive_failures=0)
        error = describe_failure(result)
        if code == GONE:
            # Not a failure streak: the receiver asked to stop, so the streak is left as is.
            return Decision(
                "disable",
                attempts,
                code,
                error,
                consecutive_failures,
                disable_reason="receiver answered 410 Gone",
            )
        if attempts < self.max_attempts and subscription_active:
            retry_at = now + self.delay(attempts, result, now, rng)
            return Decision("retry", attempts, code, error, consecutive_failures, retry_at=retry_at)
        streak = consecutive_failures + 1
        # A subscription disabled meanwhile keeps the reason it was disabled for.
        if subscription_active and streak >= self.disable_after_failures:
            return Decision(
                "disable",
                attempts,
                code,
                error,
                streak,
                disable_reason=f"{streak} consecutive deliveries failed",
            )
        return Decision("failed", attempts, code, error, streak)
