"""Webhooks: subscriptions, signatures, retries, SSRF refusals, ownership and restarts.

Deliveries go to a real HTTP receiver on a loopback port (allow-listed in the
settings), which checks both signatures independently of the engine's code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from engine.config import Settings
from engine.engine import Engine
from engine.events import EngineEvent
from lsp_server.sidecar.app import create_app
from services.composition import Services, shutdown
from services.webhooks.retry import backoff_delay, retry_after_seconds
from services.webhooks.signing import build_body
from services.webhooks.url_guard import UrlGuard, UrlRefusedError, address_refusal, parse_ipv4_loose
from tests.conftest import create_api_key, make_settings, store_overrides
from tests.support.webhook_receiver import Receiver, verify

BASE = "/v1/ai"
HOOKS = f"{BASE}/webhooks/ai-events"
SECRET = "test-secret-0123456789"

# Short timeouts and backoff keep retries and failures fast.
FAST_WEBHOOKS: dict[str, object] = {
    "allow_hosts": ["127.0.0.1"],
    "timeout_seconds": 1.0,
    "connect_timeout_seconds": 0.5,
    "backoff_base_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "poll_interval_seconds": 0.2,
    "max_attempts": 4,
}


# -- a real receiver ------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as running:
        yield running


async def eventually(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Every test that uses ``settings`` runs on SQLite, then on PostgreSQL."""
    backend: str = request.param
    return backend


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_models: dict[str, Path], store_backend: str
) -> Settings:
    """Overrides conftest's: the tiny models plus fast, loopback-allowing webhooks."""
    return make_settings(
        tmp_path / "data",
        tiny_models,
        webhooks=dict(FAST_WEBHOOKS),
        **store_overrides(request, store_backend),
    )


@dataclass
class Api:
    """An API client and two callers' credentials."""

    http: httpx.AsyncClient
    keys: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[who]}

    def caller_id(self, who: str) -> str:
        return f"key:{self.keys[who].split('_')[1]}"

    async def subscribe(
        self, who: str, url: str, events: list[str], secret: str = SECRET
    ) -> dict[str, Any]:
        response = await self.http.post(
            HOOKS, json={"url": url, "events": events, "secret": secret}, headers=self.auth(who)
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def deliveries(self, who: str, webhook_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{HOOKS}/{webhook_id}/deliveries", headers=self.auth(who))
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["deliveries"]
        return items


@pytest_asyncio.fixture
async def api(engine: Engine, services: Services, settings: Settings) -> AsyncIterator[Api]:
    keys = {who: create_api_key(settings, who) for who in ("alice", "bob")}
    app = create_app(engine, services, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Api(http, keys)


def publish(engine: Engine, event_type: str = "model_loaded", **kwargs: Any) -> EngineEvent:
    event = EngineEvent(event_type, {"model_id": "tiny-nofim", "status": "loaded"}, **kwargs)
    engine.bus.publish(event)
    return event


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


# -- the API ---------------------------------------------------------------------------


async def test_subscription_lifecycle_never_shows_the_secret(api: Api, receiver: Receiver) -> None:
    created = await api.subscribe("alice", f"{receiver.url}/a", ["model_loaded", "job_completed"])
    assert set(created) == {"id", "url", "events", "created_at", "active", "disabled_reason"}
    assert created["id"].startswith("wh_")
    assert created["events"] == ["model_loaded", "job_completed"]
    assert created["active"] is True and created["disabled_reason"] is None
    listed = await api.http.get(HOOKS, headers=api.auth("alice"))
    assert listed.status_code == 200
    assert [w["id"] for w in listed.json()["webhooks"]] == [created["id"]]
    assert listed.json()["pagination"] == {"total_count": 1, "has_more": False}
    one = await api.http.get(f"{HOOKS}/{created['id']}", headers=api.auth("alice"))
    assert one.json() == created
    for response in (listed, one):
        assert SECRET not in response.text
    deleted = await api.http.delete(f"{HOOKS}/{created['id']}", headers=api.auth("alice"))
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await api.http.get(f"{HOOKS}/{created['id']}", headers=api.auth("alice"))
    assert_envelope(gone, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"events": ["model_loaded"], "secret": "short"}, 422, "secret"),
        ({"events": ["model_exploded"], "secret": SECRET}, 422, "events.0"),
        ({"events": [], "secret": SECRET}, 422, "events"),
        ({"events": ["model_loaded"], "secret": SECRET, "extra": 1}, 422, "extra"),
        ({"events": ["model_loaded"], "secret": SECRET, "url": "ftp://127.0.0.1/"}, 400, "url"),
        ({"events": ["model_loaded"], "secret": SECRET, "url": "not a url"}, 400, "url"),
    ],
)
async def test_bad_subscriptions_name_the_field(
    api: Api, receiver: Receiver, body: dict[str, Any], status: int, field: str
) -> None:
    response = await api.http.post(
        HOOKS, json={"url": receiver.url, **body}, headers=api.auth("alice")
    )
    code = "VALIDATION_ERROR" if status == 422 else "INVALID_REQUEST"
    assert assert_envelope(response, status, code)["details"]["field"] == field


async def test_requires_credentials(api: Api) -> None:
    response = await api.http.get(HOOKS)
    assert_envelope(response, 401, "UNAUTHORIZED")


async def test_another_callers_subscription_is_404(api: Api, receiver: Receiver) -> None:
    mine = await api.subscribe("alice", receiver.url, ["model_loaded"])
    theirs = await api.http.get(HOOKS, headers=api.auth("bob"))
    assert theirs.json()["webhooks"] == []
    bob = api.auth("bob")
    for method, path in (
        ("GET", f"{HOOKS}/{mine['id']}"),
        ("DELETE", f"{HOOKS}/{mine['id']}"),
        ("GET", f"{HOOKS}/{mine['id']}/deliveries"),
        ("POST", f"{HOOKS}/{mine['id']}/deliveries/whd_x/redeliver"),
    ):
        response = await api.http.request(method, path, headers=bob)
        assert_envelope(response, 404, "NOT_FOUND")
    still = await api.http.get(f"{HOOKS}/{mine['id']}", headers=api.auth("alice"))
    assert still.status_code == 200


# -- SSRF ----------------------------------------------------------------------------

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.1/",
    "http://127.0.0.1./",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[::1]/",
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST:8080/x",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 around 127.0.0.1
]
OTHER_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://10.0.0.1/",
    "http://012.0.0.1/",  # 10.0.0.1 in octal
    "http://172.16.5.4/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://1.2.3.4.5/",
    "http://256.0.0.1/",
    "ftp://8.8.8.8/",
    "file:///etc/passwd",
    "http://user:pass@8.8.8.8/",
    "http://8.8.8.8\\@127.0.0.1/",
    "http://8.8.8.8:99999/",
    "http:///nohost",
    # Names the IDNA codec refuses (getaddrinfo raised UnicodeError: a 500).
    "http://" + "a" * 64 + ".com/",
    "http://x..com/",
    "http://.example.com/",
    "http://\u2488.com/",  # a character that maps to "1."
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + OTHER_REFUSED)
async def test_guard_refuses_every_spelling(url: str) -> None:
    with pytest.raises(UrlRefusedError):
        await UrlGuard().check(url)


async def test_guard_accepts_public_addresses_and_allow_list() -> None:
    target = await UrlGuard().check("https://[2606:4700:4700::1111]:8443/hook?x=1")
    assert target.path == "/hook?x=1" and target.host_header == "[2606:4700:4700::1111]:8443"
    allowed = UrlGuard(["127.0.0.1", "10.0.0.0/8", "LocalHost."])
    for url in (
        "http://127.0.0.1:9/",
        "http://2130706433/",
        "http://10.1.2.3/",
        "http://localhost/",
    ):
        await allowed.check(url)
    # Metadata addresses stay closed whatever the allow-list says.
    with pytest.raises(UrlRefusedError, match="metadata"):
        await UrlGuard(["169.254.0.0/16"]).check("http://169.254.169.254/")


def test_loose_ipv4_parsing_matches_inet_aton() -> None:
    for text in ("127.1", "0x7f.1", "0177.0.0.1", "2130706433", "127.0.0.1", "0x7f.0.0.1"):
        address = parse_ipv4_loose(text)
        assert address is not None
        assert address.packed == socket.inet_aton(text)
    assert parse_ipv4_loose("example.com") is None
    assert address_refusal(parse_ipv4_loose("8.8.8.8")) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706434/",  # 127.0.0.2: loopback, not the allow-listed address
        "http://0x7f.0.0.2/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://[fd00:ec2::254]/",
        "http://x..com/hook",
        "http://\u2488.com/hook",
    ],
)
async def test_registration_refuses_private_targets(api: Api, url: str) -> None:
    response = await api.http.post(
        HOOKS,
        json={"url": url, "events": ["model_loaded"], "secret": SECRET},
        headers=api.auth("alice"),
    )
    error = assert_envelope(response, 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "url"
    assert "refused" in error["message"]


async def test_delivery_checks_the_url_again(
    engine: Engine, api: Api, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", receiver.url, ["model_loaded"])
    # The configuration (or DNS) changed after registration: now refused.
    services.webhooks.guard = UrlGuard([])
    await services.start()
    publish(engine)
    await eventually(
        lambda: bool(
            services.webhooks.deliveries(api.caller_id("alice"), hook["id"])[0][0].attempts
        ),
        what="a refused attempt",
    )
    (delivery,) = await api.deliveries("alice", hook["id"])
    assert "refused at delivery" in delivery["last_error"]
    assert receiver.seen() == []


async def test_redirects_are_not_followed(
    engine: Engine, api: Api, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", f"{receiver.url}/hook", ["model_loaded"])
    receiver.mode = "redirect"
    await services.start()
    publish(engine)
    await eventually(lambda: len(receiver.seen()) >= 2, what="two attempts")
    assert {r.path for r in receiver.seen()} == {"/hook"}
    delivery = (await api.deliveries("alice", hook["id"]))[0]
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 302
    assert "redirect" in delivery["last_error"]


# -- events from the engine ---------------------------------------------------------------


async def test_model_loaded_arrives_signed(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", f"{receiver.url}/hook", ["model_loaded"])
    await services.start()
    response = await api.http.post(f"{BASE}/models/tiny-nofim/load", headers=api.auth("alice"))
    assert response.status_code in (200, 202), response.text
    await eventually(lambda: bool(receiver.seen()), what="model_loaded")
    (got,) = receiver.seen()
    assert got.payload["event_type"] == "model_loaded"
    assert got.payload["data"]["model_id"] == "tiny-nofim"
    assert got.body_signature_ok and got.header_signature_ok
    assert got.webhook_id.startswith("evt_")

    async def delivered() -> list[dict[str, Any]]:
        return await api.deliveries("alice", hook["id"])

    for _ in range(100):
        log = await delivered()
        if log and log[0]["status"] == "delivered":
            break
        await asyncio.sleep(0.02)
    (entry,) = await delivered()
    assert entry["status"] == "delivered" and entry["attempts"] == 1
    assert entry["event_id"] == got.webhook_id and entry["event_type"] == "model_loaded"
    assert entry["last_status_code"] == 200 and entry["next_attempt_at"] is None
    assert entry["delivered_at"] is not None


async def test_inference_completed_goes_only_to_its_caller(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    events = ["inference_completed"]
    await api.subscribe("alice", f"{receiver.url}/alice", events)
    await api.subscribe("bob", f"{receiver.url}/bob", events)
    await services.start()
    response = await api.http.post(
        f"{BASE}/inference/completion",
        json={
            "model_id": "tiny-nofim",
            "context": {"language": "python", "code": "def f(x):\n    return "},
            "parameters": {"max_tokens": 4},
        },
        headers=api.auth("alice"),
    )
    assert response.status_code == 200, response.text
    await eventually(lambda: bool(receiver.seen("/alice")), what="inference_completed")
    got = receiver.seen("/alice")[0]
    assert got.payload["event_type"] == "inference_completed"
    data = got.payload["data"]
    assert data["model_id"] == "tiny-nofim"
    assert data["result"]["text"] == response.json()["completion"]["text"]
    assert got.body_signature_ok and got.header_signature_ok
    # Bob's subscription only gets his own; request events without an owner
    # (the editor's, over LSP) go to nobody.
    publish(engine, "inference_completed")
    publish(engine, "inference_completed", owner=api.caller_id("bob"))
    await eventually(lambda: bool(receiver.seen("/bob")), what="bob's event")
    await asyncio.sleep(0.2)
    assert len(receiver.seen("/alice")) == 1 and len(receiver.seen("/bob")) == 1


async def test_job_completed_commits_with_the_job(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", f"{receiver.url}/alice", ["job_completed"])
    await api.subscribe("bob", f"{receiver.url}/bob", ["job_completed"])
    await services.start()
    response = await api.http.post(
        f"{BASE}/inference/completion",
        json={
            "model_id": "tiny-nofim",
            "context": {"language": "python", "code": "x = "},
            "parameters": {"max_tokens": 2},
            "options": {"async": True},
        },
        headers=api.auth("alice"),
    )
    assert response.status_code == 202, response.text
    await eventually(lambda: bool(receiver.seen("/alice")), what="job_completed")
    got = receiver.seen("/alice")[0]
    assert got.payload["event_type"] == "job_completed"
    assert got.payload["data"]["job_id"] in response.text
    assert got.payload["data"]["status"] == "completed"
    (entry,) = await api.deliveries("alice", hook["id"])
    assert entry["event_id"] == got.webhook_id
    await asyncio.sleep(0.2)
    assert receiver.seen("/bob") == []


async def test_global_events_reach_every_subscriber(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    await api.subscribe("alice", f"{receiver.url}/alice", ["model_unloaded"])
    await api.subscribe("bob", f"{receiver.url}/bob", ["model_unloaded", "model_loaded"])
    await services.start()
    event = publish(engine, "model_unloaded")
    await eventually(lambda: len(receiver.seen()) == 2, what="both deliveries")
    assert {r.path for r in receiver.seen()} == {"/alice", "/bob"}
    assert {r.webhook_id for r in receiver.seen()} == {event.id}


# -- failure handling ----------------------------------------------------------------------


async def test_500_is_retried_with_the_same_id(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", receiver.url, ["model_loaded"])
    receiver.mode = "fail"
    await services.start()
    event = publish(engine)
    await eventually(lambda: len(receiver.seen()) >= 2, what="retries")
    receiver.mode = "ok"
    await eventually(
        lambda: (
            services.webhooks.deliveries(api.caller_id("alice"), hook["id"])[0][0].status
            == "delivered"
        ),
        what="delivery",
    )
    seen = receiver.seen()
    assert {r.webhook_id for r in seen} == {event.id}
    assert all(r.body_signature_ok and r.header_signature_ok for r in seen)
    (entry,) = await api.deliveries("alice", hook["id"])
    assert entry["attempts"] == len(seen) and entry["last_status_code"] == 200


async def test_exhausted_attempts_fail_then_redeliver(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", receiver.url, ["model_loaded"])
    receiver.mode = "fail"
    await services.start()
    event = publish(engine)
    caller = api.caller_id("alice")
    await eventually(
        lambda: services.webhooks.deliveries(caller, hook["id"])[0][0].status == "failed",
        what="failed delivery",
    )
    (entry,) = await api.deliveries("alice", hook["id"])
    assert entry["attempts"] == FAST_WEBHOOKS["max_attempts"] == len(receiver.seen())
    assert entry["last_status_code"] == 500 and entry["last_error"] == "HTTP 500"
    assert entry["next_attempt_at"] is None
    receiver.mode = "ok"
    response = await api.http.post(
        f"{HOOKS}/{hook['id']}/deliveries/{entry['id']}/redeliver", headers=api.auth("alice")
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    await eventually(
        lambda: services.webhooks.deliveries(caller, hook["id"])[0][0].status == "delivered",
        what="redelivery",
    )
    assert receiver.seen()[-1].webhook_id == event.id
    missing = await api.http.post(
        f"{HOOKS}/{hook['id']}/deliveries/whd_nope/redeliver", headers=api.auth("alice")
    )
    assert_envelope(missing, 404, "NOT_FOUND")


async def test_410_disables_the_subscription(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", receiver.url, ["model_loaded"])
    receiver.mode = "gone"
    await services.start()
    publish(engine)
    await eventually(lambda: bool(receiver.seen()), what="the first attempt")
    caller = api.caller_id("alice")
    await eventually(lambda: not services.webhooks.get(caller, hook["id"]).active, what="disable")
    state = (await api.http.get(f"{HOOKS}/{hook['id']}", headers=api.auth("alice"))).json()
    assert state["active"] is False and "410" in state["disabled_reason"]
    publish(engine)
    await asyncio.sleep(0.4)
    assert len(receiver.seen()) == 1
    (entry,) = await api.deliveries("alice", hook["id"])
    assert entry["status"] == "failed" and entry["last_status_code"] == 410


async def test_repeated_failures_disable_the_subscription(
    tmp_path: Path, tiny_models: dict[str, Path], receiver: Receiver, services: Services
) -> None:
    options = {**FAST_WEBHOOKS, "max_attempts": 1, "disable_after_failures": 2}
    strict = make_settings(tmp_path / "strict", tiny_models, webhooks=options)
    engine = Engine(strict)
    services = Services(engine, strict)
    try:
        hook = await services.webhooks.create("key:owner", receiver.url, ["model_loaded"], SECRET)
        receiver.mode = "fail"
        await services.start()
        publish(engine)
        await eventually(
            lambda: services.webhooks.deliveries("key:owner", hook.id)[0][0].status == "failed",
            what="first failed delivery",
        )
        assert services.webhooks.get("key:owner", hook.id).active
        publish(engine)
        await eventually(
            lambda: not services.webhooks.get("key:owner", hook.id).active, what="disable"
        )
        assert len(receiver.seen()) == 2
        reason = services.webhooks.get("key:owner", hook.id).disabled_reason or ""
        assert "2 consecutive" in reason
    finally:
        await shutdown(engine, services)


async def test_429_retry_after_is_honoured(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    await api.subscribe("alice", receiver.url, ["model_loaded"])
    receiver.mode = "ratelimit"
    receiver.retry_after = "1"
    await services.start()
    publish(engine)
    await eventually(lambda: len(receiver.seen()) >= 1, what="first attempt")
    receiver.mode = "ok"
    await eventually(lambda: len(receiver.seen()) >= 2, what="second attempt")
    first, second = receiver.seen()[:2]
    # Backoff alone would retry within 0.2 s; the receiver asked for 1 s.
    assert second.at - first.at >= 0.9
    assert first.webhook_id == second.webhook_id


@pytest.mark.parametrize("mode", ["hang", "trickle"])
async def test_slow_receivers_cost_only_their_timeout(
    api: Api, engine: Engine, receiver: Receiver, mode: str, services: Services
) -> None:
    hook = await api.subscribe("alice", receiver.url, ["model_loaded"])
    receiver.mode = mode
    await services.start()
    publish(engine)
    await eventually(lambda: bool(receiver.seen()), what="first attempt")
    # The API answers at once while the delivery hangs.
    for _ in range(5):
        started = time.monotonic()
        response = await api.http.get(HOOKS, headers=api.auth("alice"))
        assert response.status_code == 200
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.05)
    caller = api.caller_id("alice")
    await eventually(
        lambda: services.webhooks.deliveries(caller, hook["id"])[0][0].attempts >= 1,
        timeout=5.0,
        what="the timed-out attempt",
    )
    (entry,) = await api.deliveries("alice", hook["id"])
    assert entry["status"] == "pending" and "timed out after 1 s" in entry["last_error"]


# -- the outbox and restarts -------------------------------------------------------------------


async def test_event_rolls_back_with_its_transaction(
    api: Api, engine: Engine, receiver: Receiver, services: Services
) -> None:
    hook = await api.subscribe("alice", receiver.url, ["job_completed"])
    caller = api.caller_id("alice")
    with pytest.raises(RuntimeError), services.store.transaction() as tx:
        services.state_events.publish(
            EngineEvent("job_completed", {"job_id": "j1"}, owner=caller), tx
        )
        raise RuntimeError("the state change failed")
    assert services.webhooks.deliveries(caller, hook["id"])[1] == 0
    with services.store.transaction() as tx:
        services.state_events.publish(
            EngineEvent("job_completed", {"job_id": "j2"}, owner=caller), tx
        )
    assert services.webhooks.deliveries(caller, hook["id"])[1] == 1


async def test_pending_delivery_survives_a_restart(settings: Settings, receiver: Receiver) -> None:
    first = Engine(settings)
    first_services = Services(first, settings)
    try:
        hook = await first_services.webhooks.create(
            "key:owner", receiver.url, ["model_loaded"], SECRET
        )
        event = EngineEvent("model_loaded", {"model_id": "tiny-nofim"})
        with first_services.store.transaction() as tx:
            first_services.state_events.publish(event, tx)
        # The worker never started: the event only exists as an outbox row.
        assert first_services.webhooks.deliveries("key:owner", hook.id)[0][0].status == "pending"
    finally:
        await shutdown(first, first_services)
    assert receiver.seen() == []
    second = Engine(settings)
    second_services = Services(second, settings)
    try:
        await second.start()
        await second_services.start()
        await eventually(lambda: bool(receiver.seen()), what="the delivery after restart")
        got = receiver.seen()[0]
        assert got.webhook_id == event.id
        assert got.payload["timestamp"] == event.timestamp
        assert got.body_signature_ok and got.header_signature_ok
    finally:
        await shutdown(second, second_services)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_healthy(base: str, key: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", headers={"X-API-Key": key}, timeout=1).is_success:
                return
        time.sleep(0.1)
    raise AssertionError("the server did not become healthy")


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_keeps_pending_deliveries(
    tmp_path: Path, tiny_models: dict[str, Path], receiver: Receiver
) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "ai-ide.toml"
    model = tiny_models["tiny-nofim"]
    config.write_text(
        "\n".join(
            [
                f'data_dir = "{data_dir}"',
                "preload = []",
                "[inference]",
                "n_threads = 2",
                "[webhooks]",
                'allow_hosts = ["127.0.0.1"]',
                "timeout_seconds = 1.0",
                "backoff_base_seconds = 0.1",
                "backoff_max_seconds = 0.3",
                "poll_interval_seconds = 0.2",
                "max_attempts = 100",
                "[[models]]",
                'id = "tiny-nofim"',
                'name = "tiny-nofim"',
                f'path = "{model}"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    key = create_api_key(make_settings(data_dir, {}), "kill-test")
    headers = {"X-API-Key": key}
    port = _free_port()
    base = f"http://127.0.0.1:{port}{BASE}"
    command = [sys.executable, "-m", "lsp_server.cli", "serve", "--config", str(config)]
    command += ["--port", str(port)]
    log_file = (tmp_path / "server.log").open("wb")

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file)
        _wait_healthy(base, key, process)
        return process

    server = start()
    try:
        response = httpx.post(
            f"{base}/webhooks/ai-events",
            json={"url": receiver.url, "events": ["model_loaded"], "secret": SECRET},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        hook_id = response.json()["id"]
        receiver.mode = "fail"
        load = httpx.post(f"{base}/models/tiny-nofim/load", headers=headers)
        assert load.status_code in (200, 202), load.text
        _wait(lambda: len(receiver.seen()) >= 2, 20, "failed attempts before the kill")
        # Kill it while an attempt is in flight (the receiver holds it open).
        receiver.mode = "hang"
        before_hang = len(receiver.seen())
        _wait(lambda: len(receiver.seen()) > before_hang, 20, "an attempt in flight")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        event_id = receiver.seen()[0].webhook_id
        failed_attempts = len(receiver.seen())
        receiver.mode = "ok"
        server = start()
        _wait(lambda: len(receiver.seen()) > failed_attempts, 20, "the delivery after the restart")
        assert {r.webhook_id for r in receiver.seen()} == {event_id}
        assert all(r.header_signature_ok and r.body_signature_ok for r in receiver.seen())
        _wait(
            lambda: (
                httpx.get(
                    f"{base}/webhooks/ai-events/{hook_id}/deliveries", headers=headers
                ).json()["deliveries"][0]["status"]
                == "delivered"
            ),
            10,
            "the delivered status",
        )
        log = httpx.get(f"{base}/webhooks/ai-events/{hook_id}/deliveries", headers=headers)
        (entry,) = log.json()["deliveries"]
        assert entry["event_id"] == event_id
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log_file.close()


# -- pure functions -------------------------------------------------------------------


def test_body_and_signature_are_canonical() -> None:
    body = build_body(SECRET, "inference_completed", "2025-09-16T15:57:31Z", {"b": "é", "a": 1})
    assert body.startswith(b'{"data":{"a":1,"b":"\xc3\xa9"},"event_type":"inference_completed"')
    message = Message()
    message["webhook-id"] = "evt_1"
    message["webhook-timestamp"] = str(int(time.time()))
    signed = f"evt_1.{message['webhook-timestamp']}.".encode() + body
    digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()
    message["webhook-signature"] = "v1," + base64.b64encode(digest).decode()
    assert verify(SECRET, message, body) == (True, True)
    assert verify("another-secret-0123", message, body) == (False, False)


def test_retry_after_and_backoff() -> None:
    now = time.time()
    assert retry_after_seconds("7", now) == 7.0
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    parsed = retry_after_seconds(later, now)
    assert parsed is not None and 28 <= parsed <= 31
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    rng = random.Random(1)
    for attempts in range(1, 12):
        delay = backoff_delay(attempts, 5.0, 3600.0, rng)
        assert 0.0 <= delay <= min(3600.0, 5.0 * 2 ** (attempts - 1))
