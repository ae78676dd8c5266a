"""Per-caller rate limits: sliding one-minute windows plus an inference concurrency cap.

Each policy keeps, per caller, the times of the requests it accepted during
the last window (a sliding-window log). A request is admitted when every
policy that applies to it has room, and only then counted, so a client that
keeps retrying regains access on schedule. The log is exact: no 60-second
span ever holds more than the quota, so a burst at the end of one minute and
another at the start of the next cannot add up to twice the limit (fixed
windows allow that, and so does GCRA with a burst of one quota). Memory is
bounded by the quotas: at most ``quota`` timestamps per caller and policy,
and idle callers are swept away.

Refusals are 429 ``RATE_LIMIT_EXCEEDED`` with ``Retry-After``; every admitted
response carries the ``RateLimit-Policy`` and ``RateLimit`` fields of
draft-ietf-httpapi-ratelimit-headers, e.g. ``RateLimit-Policy:
"inference";q=100;w=60`` and ``RateLimit: "inference";r=99;t=60``.

The limiter lives on one event loop (the app's); it holds no locks.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.config import RateLimitSettings
from lsp_server.sidecar.deps import Caller
from lsp_server.sidecar.errors import envelope, new_request_id

WINDOW_SECONDS = 60

Clock = Callable[[], float]


@dataclass(frozen=True)
class Policy:
    """A quota of requests per window, named as in the RateLimit headers."""

    name: str
    quota: int
    window_seconds: int
    message: str


@dataclass(frozen=True)
class QuotaState:
    """One policy's standing for a caller after a decision."""

    policy: Policy
    remaining: int
    reset_seconds: int


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused and when to come back."""

    policy: str
    limit: int
    window_seconds: int
    retry_after_seconds: int
    message: str

    def details(self) -> dict[str, object]:
        """The error envelope's ``details``."""
        return {
            "limit": self.limit,
            "window_seconds": self.window_seconds,
            "retry_after_seconds": self.retry_after_seconds,
            "policy": self.policy,
        }


@dataclass(frozen=True)
class Admission:
    """The limiter's answer: admitted (maybe holding a concurrency slot) or refused."""

    quotas: tuple[QuotaState, ...]
    refusal: Refusal | None = None
    holds_slot: bool = False

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` (plus ``Retry-After`` on a refusal)."""
        headers: dict[str, str] = {}
        if self.quotas:
            headers["RateLimit-Policy"] = ", ".join(
                f'"{q.policy.name}";q={q.policy.quota};w={q.policy.window_seconds}'
                for q in self.quotas
            )
            headers["RateLimit"] = ", ".join(
                f'"{q.policy.name}";r={q.remaining};t={q.reset_seconds}' for q in self.quotas
            )
        if self.refusal is not None:
            headers["Retry-After"] = str(self.refusal.retry_after_seconds)
        return headers


def _under(path: str, area: str) -> bool:
    return path == area or path.startswith(area + "/")


class RateLimiter:
    """Sliding-window request quotas and a concurrency cap, per caller, in memory."""

    def __init__(
        self,
        settings: RateLimitSettings,
        api_prefix: str,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        self.api_prefix = api_prefix
        self.max_concurrent = settings.max_concurrent_inference
        w = WINDOW_SECONDS
        self.overall = Policy(
            "default",
            settings.requests_per_minute,
            w,
            f"Rate limit exceeded: {settings.requests_per_minute} requests per {w} seconds",
        )
        self.inference = Policy(
            "inference", settings.inference_per_minute, w, "Rate limit exceeded for AI inference"
        )
        self.model_management = Policy(
            "model_management",
            settings.model_management_per_minute,
            w,
            "Rate limit exceeded for model management",
        )
        self.batch = Policy(
            "batch", settings.batch_per_minute, w, "Rate limit exceeded for batch operations"
        )
        self._log: dict[tuple[str, str], deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._next_sweep = clock() + w

    def classify(self, method: str, path: str) -> tuple[tuple[Policy, ...], bool]:
        """The policies a request counts against, and whether it takes an inference slot."""
        prefix = self.api_prefix
        rest = path[len(prefix) :] if path.startswith(prefix + "/") else ""
        if _under(rest, "/inference") or _under(rest, "/orchestration"):
            return (self.overall, self.inference), True
        if method == "POST" and _under(rest, "/models"):
            return (self.overall, self.model_management), False
        if method == "POST" and _under(rest, "/batch"):
            return (self.overall, self.batch), False
        return (self.overall,), False

    def _window(self, caller_id: str, policy: Policy, now: float) -> deque[float]:
        key = (caller_id, policy.name)
        log = self._log.get(key)
        if log is None:
            log = self._log[key] = deque()
        horizon = now - policy.window_seconds
        while log and log[0] <= horizon:
            log.popleft()
        return log

    def _sweep(self, now: float) -> None:
        """Forget callers with nothing left in their windows."""
        for key in [
            k for k, log in self._log.items() if not log or log[-1] <= now - WINDOW_SECONDS
        ]:
            del self._log[key]
        self._next_sweep = now + WINDOW_SECONDS

    def admit(self, caller_id: str, policies: tuple[Policy, ...], *, slot: bool) -> Admission:
        """Count one request against ``policies`` (and take a slot) if all have room."""
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now)
        logs = [self._window(caller_id, p, now) for p in policies]
        refusal: Refusal | None = None
        for policy, log in zip(policies, logs, strict=True):
            if len(log) >= policy.quota:
                # The oldest entries leave the window first; room opens when enough have.
                frees_at = log[len(log) - policy.quota] + policy.window_seconds
                retry = max(1, math.ceil(frees_at - now))
                if refusal is None or retry > refusal.retry_after_seconds:
                    refusal = Refusal(
                        policy.name, policy.quota, policy.window_seconds, retry, policy.message
                    )
        if refusal is None and slot and self._in_flight.get(caller_id, 0) >= self.max_concurrent:
            refusal = Refusal(
                "concurrency",
                self.max_concurrent,
                0,
                1,
                f"Too many concurrent inference requests (at most {self.max_concurrent} "
                "per caller); wait for one to finish",
            )
        if refusal is None:
            for log in logs:
                log.append(now)
            if slot:
                self._in_flight[caller_id] = self._in_flight.get(caller_id, 0) + 1
        quotas = tuple(
            QuotaState(
                p,
                max(0, p.quota - len(log)),
                max(0, math.ceil(log[0] + p.window_seconds - now)) if log else 0,
            )
            for p, log in zip(policies, logs, strict=True)
        )
        return Admission(quotas, refusal, holds_slot=refusal is None and slot)

    def release(self, caller_id: str) -> None:
        """Give back an inference slot taken by :meth:`admit`."""
        count = self._in_flight.get(caller_id, 0) - 1
        if count > 0:
            self._in_flight[caller_id] = count
        else:
            self._in_flight.pop(caller_id, None)

    def in_flight(self, caller_id: str) -> int:
        """Inference requests the caller has running."""
        return self._in_flight.get(caller_id, 0)


class RateLimitMiddleware:
    """Apply :class:`RateLimiter` to authenticated requests (runs after authentication).

    Plain ASGI, so an inference slot is held until the response has been sent
    completely: for a stream, until its last event or the client's disconnect.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        state = scope.get("state") or {}
        caller = state.get("caller")
        if scope["type"] != "http" or not isinstance(caller, Caller):
            await self.app(scope, receive, send)
            return
        policies, slot = self.limiter.classify(scope["method"], scope["path"])
        admission = self.limiter.admit(caller.id, policies, slot=slot)
        headers = admission.headers()
        if admission.refusal is not None:
            refusal = admission.refusal
            request_id = state.get("request_id")
            response = envelope(
                429,
                "RATE_LIMIT_EXCEEDED",
                refusal.message,
                request_id if isinstance(request_id, str) else new_request_id(),
                refusal.details(),
                headers,
            )
            await response(scope, receive, send)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *raw]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if admission.holds_slot:
                self.limiter.release(caller.id)
