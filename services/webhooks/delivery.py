"""Sending deliveries: the HTTP sender and the asyncio loop that drains the outbox.

The loop claims due rows (see :mod:`services.webhooks.outbox`) and sends each
on its own task, a bounded number at a time; it sleeps until the next row is
due, a poll interval at most, or until :meth:`DeliveryWorker.notify` says a
new row was committed. Every attempt is bounded in time (one deadline for
resolve, connect, send and read) and in bytes read, and checks the URL again:
the configuration or DNS may have changed since the subscription was made.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable

import httpx
from sqlalchemy.exc import SQLAlchemyError

from engine.config import WebhookSettings
from services.webhooks.outbox import Claimed, Outbox
from services.webhooks.retry import AttemptResult
from services.webhooks.signing import standard_signature
from services.webhooks.subscriptions import SubscriptionStore
from services.webhooks.url_guard import UrlGuard, UrlRefusedError, WebhookTarget

log = logging.getLogger(__name__)

USER_AGENT = "ai-ide-webhooks/1"
PRUNE_EVERY_SECONDS = 3600.0


class HttpSender:
    """Sends one signed delivery and reports what came back, never raising."""

    def __init__(
        self, settings: WebhookSettings, guard: UrlGuard, clock: Callable[[], float]
    ) -> None:
        self._settings = settings
        self._clock = clock
        # Read at every attempt, so replacing it takes effect for the next one.
        self.guard = guard
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        """Create the HTTP client (on the running loop)."""
        if self._client is not None:
            return
        settings = self._settings
        self._client = httpx.AsyncClient(
            follow_redirects=False,  # a redirect could lead anywhere: it is a failed attempt
            trust_env=False,  # a proxy from the environment would bypass the address checks
            timeout=httpx.Timeout(
                settings.timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            limits=httpx.Limits(
                max_connections=settings.max_concurrency,
                max_keepalive_connections=settings.max_concurrency,
                keepalive_expiry=5.0,
            ),
        )

    async def close(self) -> None:
        """Close the HTTP client."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def attempt(self, claimed: Claimed) -> AttemptResult:
        """One attempt: the status and Retry-After received, or what went wrong."""
        timeout = self._settings.timeout_seconds
        try:
            # One bound for the whole attempt: a receiver that trickles bytes
            # never resets it, unlike a per-read timeout.
            async with asyncio.timeout(timeout):
                target = await self.guard.check(claimed.url)
                status_code, retry_after = await self._send(target, claimed)
        except UrlRefusedError as exc:
            return AttemptResult(error=f"URL refused at delivery: {exc}")
        except TimeoutError:
            return AttemptResult(error=f"timed out after {timeout:g} s")
        except (httpx.HTTPError, OSError) as exc:
            return AttemptResult(
                error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            )
        except Exception as exc:
            # A bug here must cost one attempt, not the row: it is retried.
            log.exception("webhook delivery %s failed unexpectedly", claimed.id)
            return AttemptResult(error=f"internal error: {type(exc).__name__}")
        return AttemptResult(status_code=status_code, retry_after=retry_after)

    async def _send(self, target: WebhookTarget, claimed: Claimed) -> tuple[int, str | None]:
        client = self._client
        if client is None:
            raise RuntimeError("the webhook sender is not open")
        # Connect to the address the guard checked, not to whatever the name
        # resolves to a moment later (DNS rebinding); Host and SNI keep the name.
        address = target.addresses[0]
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        timestamp = int(self._clock())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": claimed.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(
                claimed.secret, claimed.event_id, timestamp, claimed.body
            ),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = client.build_request(
            "POST",
            f"{target.scheme}://{host}:{target.port}{target.path}",
            content=claimed.body,
            headers=headers,
            extensions=extensions,
        )
        response = await client.send(request, stream=True)
        try:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= self._settings.max_response_bytes:
                    break  # only the status matters; a huge body is not our problem
        finally:
            await response.aclose()
        return response.status_code, response.headers.get("retry-after")


class DeliveryWorker:
    """The asyncio task that claims due deliveries, sends them and records the outcomes."""

    def __init__(
        self,
        outbox: Outbox,
        subscriptions: SubscriptionStore,
        sender: HttpSender,
        settings: WebhookSettings,
        clock: Callable[[], float],
    ) -> None:
        self._outbox = outbox
        self._subscriptions = subscriptions
        self._sender = sender
        self._settings = settings
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        """True while the loop runs."""
        return self._runner is not None

    def notify(self) -> None:
        """Wake the loop: a row was committed (safe from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    async def start(self) -> None:
        """Start delivering: pending rows from earlier runs first, then new events."""
        if self._runner is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await self._sender.open()
        self._runner = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Stop delivering; attempts in flight are cancelled and will be retried."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(runner, *tasks, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(SQLAlchemyError):
            await asyncio.to_thread(self._outbox.release_leases)
        await self._sender.close()
        self._loop = None
        self._wake = None

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        settings = self._settings
        last_prune = 0.0
        last_reload = 0.0
        while True:
            # Clear before looking: a wake-up that arrives while we look is
            # kept for the next round, so no committed row waits for the poll.
            wake.clear()
            try:
                free = settings.max_concurrency - len(self._tasks)
                if free > 0:
                    for claimed in await asyncio.to_thread(self._outbox.claim, free):
                        task = asyncio.create_task(self._deliver(claimed))
                        self._tasks.add(task)
                        task.add_done_callback(self._task_done)
                if self._clock() - last_reload >= settings.poll_interval_seconds:
                    # Another replica on the store may have changed
                    # subscriptions; local changes reach the index at once.
                    last_reload = self._clock()
                    await asyncio.to_thread(self._subscriptions.reload)
                if self._clock() - last_prune >= PRUNE_EVERY_SECONDS:
                    last_prune = self._clock()
                    await asyncio.to_thread(self._outbox.prune, settings.retention_days * 86400.0)
                if len(self._tasks) >= settings.max_concurrency:
                    delay = settings.poll_interval_seconds  # a finishing task wakes us
                else:
                    delay = await asyncio.to_thread(self._next_delay)
            except Exception:
                log.exception("webhook delivery loop failed; retrying")
                delay = settings.poll_interval_seconds
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    def _next_delay(self) -> float:
        poll = self._settings.poll_interval_seconds
        due = self._outbox.next_due()
        if due is None:
            return poll
        return min(poll, max(0.0, due - self._clock()))

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery task failed", exc_info=task.exception())
        if self._wake is not None:
            self._wake.set()

    async def _deliver(self, claimed: Claimed) -> None:
        result = await self._sender.attempt(claimed)
        await asyncio.to_thread(self._outbox.record, claimed, result)
