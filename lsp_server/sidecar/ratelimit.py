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

Several API replicas share their windows through Redis
(``rate_limits.redis_url``): :class:`SharedRateLimiter` keeps the same
sliding-window log per caller and policy in a sorted set, checked and
counted by one Lua script, so the check and the count are atomic across
replicas, timed by Redis's own clock so that replicas' clocks cannot
disagree. The concurrency cap stays per replica: it protects that replica's
model queues, and a replica killed with slots held must not leave them taken
in Redis. When Redis fails or is slower than ``redis_timeout_seconds`` the
replica falls back to its own in-memory windows (logged, and counted in
``ai_ide_rate_limit_fallbacks_total``) and asks Redis again a few seconds
later: a Redis outage then loosens the limits to one quota per replica
instead of taking the whole API down with it (rate limits guard capacity;
authentication, which guards access, does not depend on Redis).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.config import RateLimitSettings
from lsp_server.sidecar.deps import Caller
from lsp_server.sidecar.errors import envelope, new_request_id

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# After a Redis failure, this replica limits alone for this long before asking again,
# so that an unreachable Redis costs one timeout per interval, not one per request.
REDIS_RETRY_SECONDS = 5.0
# A failure is logged at most this often (a Redis outage would flood the log).
REDIS_LOG_EVERY_SECONDS = 60.0
REDIS_KEY_PREFIX = "ai-ide:ratelimit"

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
        if refusal is None and slot:
            refusal = self.concurrency_refusal(caller_id)
        if refusal is None:
            for log in logs:
                log.append(now)
            if slot:
                self.take_slot(caller_id)
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

    def concurrency_refusal(self, caller_id: str) -> Refusal | None:
        """The refusal for a caller whose inference slots are all taken, else None."""
        if self._in_flight.get(caller_id, 0) < self.max_concurrent:
            return None
        return Refusal(
            "concurrency",
            self.max_concurrent,
            0,
            1,
            f"Too many concurrent inference requests (at most {self.max_concurrent} "
            "per caller); wait for one to finish",
        )

    def take_slot(self, caller_id: str) -> None:
        """Count one running inference request of the caller (see :meth:`release`)."""
        self._in_flight[caller_id] = self._in_flight.get(caller_id, 0) + 1

    async def check(self, caller_id: str, policies: tuple[Policy, ...], *, slot: bool) -> Admission:
        """:meth:`admit`, as the middleware calls every limiter."""
        return self.admit(caller_id, policies, slot=slot)

    async def close(self) -> None:
        """Nothing to close (the windows are in memory)."""


class Limiter(Protocol):
    """What :class:`RateLimitMiddleware` needs of a limiter (in memory or shared)."""

    def classify(self, method: str, path: str) -> tuple[tuple[Policy, ...], bool]:
        """The policies a request counts against, and whether it takes an inference slot."""
        ...

    async def check(self, caller_id: str, policies: tuple[Policy, ...], *, slot: bool) -> Admission:
        """Count one request if every policy has room (and take a slot if asked)."""
        ...

    def release(self, caller_id: str) -> None:
        """Give back an inference slot taken by :meth:`check`."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# KEYS: one sorted set per policy. ARGV: a unique member, then quota and window per key.
# Returns the 1-based index of the refusing policy (0: admitted), its retry-after in
# whole seconds, then per key the requests in the window and the seconds until the
# oldest leaves it (Lua numbers come back as integers: everything is rounded up here).
_SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS
local counts = {}
local refused, retry = 0, 0
for i = 1, n do
  local quota = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  counts[i] = count
  if count >= quota then
    local oldest = redis.call('ZRANGE', KEYS[i], count - quota, count - quota, 'WITHSCORES')
    local wait = math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
    if wait > retry then
      refused, retry = i, wait
    end
  end
end
if refused == 0 then
  for i = 1, n do
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2 * i + 1]) * 1000) + 1000)
    counts[i] = counts[i] + 1
  end
end
local out = {refused, retry}
for i = 1, n do
  local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  local reset = 0
  if first[2] then
    reset = math.max(0, math.ceil(tonumber(first[2]) + tonumber(ARGV[2 * i + 1]) - now))
  end
  out[#out + 1] = counts[i]
  out[#out + 1] = reset
end
return out
"""


class SharedRateLimiter:
    """The request windows in Redis, shared by every replica; slots per replica.

    Falls back to ``local`` (this replica's in-memory windows) while Redis
    fails, and counts each fallback in :attr:`fallbacks`.
    """

    def __init__(
        self,
        settings: RateLimitSettings,
        api_prefix: str,
        client: aioredis.Redis,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.local = RateLimiter(settings, api_prefix, clock=clock)
        self._client = client
        self._script = client.register_script(_SLIDING_WINDOW_LUA)
        self._timeout = settings.redis_timeout_seconds
        self._clock = clock
        self._skip_until = 0.0
        self._next_log = 0.0
        self.fallbacks = 0

    @classmethod
    def from_url(
        cls,
        settings: RateLimitSettings,
        api_prefix: str,
        url: str,
        *,
        clock: Clock = time.monotonic,
    ) -> SharedRateLimiter:
        """A limiter over the Redis at ``url`` (connections open at the first request)."""
        timeout = settings.redis_timeout_seconds
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        return cls(settings, api_prefix, client, clock=clock)

    def classify(self, method: str, path: str) -> tuple[tuple[Policy, ...], bool]:
        """The policies a request counts against, and whether it takes an inference slot."""
        return self.local.classify(method, path)

    def release(self, caller_id: str) -> None:
        """Give back an inference slot (slots are this replica's own)."""
        self.local.release(caller_id)

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()

    async def check(self, caller_id: str, policies: tuple[Policy, ...], *, slot: bool) -> Admission:
        """Count one request in Redis if every policy has room; locally while Redis fails."""
        if self._clock() < self._skip_until:
            return self._fallback(caller_id, policies, slot=slot)
        # Slots first, and locally: a request refused for concurrency is not counted.
        refusal = self.local.concurrency_refusal(caller_id) if slot else None
        if refusal is not None:
            return Admission((), refusal)
        keys = [f"{REDIS_KEY_PREFIX}:{{{caller_id}}}:{p.name}" for p in policies]
        args: list[str | int] = [uuid.uuid4().hex]
        for policy in policies:
            args += [policy.quota, policy.window_seconds]
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return self._fallback(caller_id, policies, slot=slot)
        refused, retry = int(raw[0]), int(raw[1])
        quotas = tuple(
            QuotaState(p, max(0, p.quota - int(raw[2 + 2 * i])), int(raw[3 + 2 * i]))
            for i, p in enumerate(policies)
        )
        if refused:
            policy = policies[refused - 1]
            refusal = Refusal(
                policy.name, policy.quota, policy.window_seconds, retry, policy.message
            )
            return Admission(quotas, refusal)
        if slot:
            self.local.take_slot(caller_id)
        return Admission(quotas, None, holds_slot=slot)

    def _fallback(self, caller_id: str, policies: tuple[Policy, ...], *, slot: bool) -> Admission:
        self.fallbacks += 1
        return self.local.admit(caller_id, policies, slot=slot)

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._skip_until = now + REDIS_RETRY_SECONDS
        if now >= self._next_log:
            self._next_log = now + REDIS_LOG_EVERY_SECONDS
            log.warning(
                "rate limits: Redis failed (%s); this replica limits alone, in memory, "
                "and tries Redis again in %g s",
                type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}",
                REDIS_RETRY_SECONDS,
            )


def build_rate_limiter(
    settings: RateLimitSettings, api_prefix: str, *, clock: Clock = time.monotonic
) -> RateLimiter | SharedRateLimiter:
    """The limiter the settings ask for: shared in Redis with ``redis_url``, else in memory."""
    if settings.redis_url is not None:
        return SharedRateLimiter.from_url(
            settings, api_prefix, settings.redis_url.get_secret_value(), clock=clock
        )
    return RateLimiter(settings, api_prefix, clock=clock)


class RateLimitMiddleware:
    """Apply :class:`RateLimiter` to authenticated requests (runs after authentication).

    Plain ASGI, so an inference slot is held until the response has been sent
    completely: for a stream, until its last event or the client's disconnect.
    """

    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
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
        admission = await self.limiter.check(caller.id, policies, slot=slot)
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
