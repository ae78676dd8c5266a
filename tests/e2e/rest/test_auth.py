"""Authentication: API keys, JWTs, the first-start key file, and 401 on every route."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI
from pydantic import ValidationError

from engine.config import AuthSettings, Settings
from engine.engine import Engine
from lsp_server import cli
from lsp_server.sidecar.app import create_app
from lsp_server.sidecar.auth import MAX_TOKEN_BYTES, AuthError, AuthMiddleware, JwtVerifier
from lsp_server.sidecar.deps import Caller, get_caller
from services.composition import Services, shutdown
from services.keys import (
    INITIAL_KEY_FILE,
    SERVER_SECRET_FILE,
    TRUST_VALID_SECONDS,
    ApiKeyStore,
    KeyStatus,
    ensure_initial_key,
)
from services.store import DATABASE_FILE, Store
from tests.conftest import create_api_key, make_settings

BASE = "/v1/ai"
SECRET = "s" * 40
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# -- helpers -------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token built by hand (PyJWT refuses to make some of the attacks)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def assert_unauthorized(response: httpx.Response, reason: str | None = None) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "UNAUTHORIZED"
    assert error["message"]
    assert RFC3339.match(error["timestamp"])
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["WWW-Authenticate"]
    if reason is not None:
        assert error["details"]["reason"] == reason, error
    return dict(error)


def add_whoami(app: FastAPI) -> None:
    """A route that reports the caller (app-level dependencies apply to it too)."""

    @app.get(f"{BASE}/test/whoami")
    async def whoami(caller: Annotated[Caller, Depends(get_caller)]) -> dict[str, str]:
        return {"id": caller.id, "kind": caller.kind}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    engine = Engine(settings)
    services = Services(engine, settings)
    try:
        app = create_app(engine, services, settings)
        add_whoami(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client
    finally:
        await shutdown(engine, services)


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- every route needs credentials ----------------------------------------------


def concrete_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def route_table(app: FastAPI) -> list[tuple[str, set[str]]]:
    """Every route's path and methods (newer FastAPI keeps included routers nested)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        contexts: list[Any] = list(app.routes)
    else:
        contexts = list(iter_route_contexts(app.routes))
    return [(c.path, set(c.methods or {"GET"})) for c in contexts if c.path]


async def test_every_route_without_credentials_is_401(settings: Settings) -> None:
    async with serving(settings) as (app, client):
        checked = 0
        for route_path, methods in route_table(app):
            path = concrete_path(route_path)
            for method in sorted(methods):
                response = await client.request(method, path)
                if route_path in (f"{BASE}/docs", "/dashboard"):
                    # The docs page and the dashboard are static shells with no API data.
                    assert response.status_code == 200
                    assert '"paths"' not in response.text
                    continue
                if method == "HEAD":  # no body, by definition
                    assert response.status_code == 401
                    assert response.headers["WWW-Authenticate"]
                else:
                    assert_unauthorized(response, "missing_credentials")
                checked += 1
        assert checked >= 10
        assert {f"{BASE}/health", f"{BASE}/inference/completion"} <= {
            p for p, _ in route_table(app)
        }
        # Unknown routes and the OpenAPI document too, whatever the method.
        for method, path in [
            ("GET", f"{BASE}/nope"),
            ("DELETE", f"{BASE}/health"),
            ("GET", "/"),
            ("GET", f"{BASE}/openapi.json"),
            ("POST", "/docs/oauth2-redirect"),
        ]:
            assert_unauthorized(await client.request(method, path))
        # Bad credentials are no better than none.
        bad = await client.get(f"{BASE}/health", headers={"X-API-Key": "aiide_nope"})
        assert_unauthorized(bad, "malformed_key")


async def test_openapi_document_with_credentials_declares_both_schemes(
    settings: Settings,
) -> None:
    key = create_api_key(settings)
    async with serving(settings) as (_, client):
        response = await client.get(f"{BASE}/openapi.json", headers={"X-API-Key": key})
        assert response.status_code == 200
        schemes = response.json()["components"]["securitySchemes"]
        assert {s["type"] for s in schemes.values()} == {"apiKey", "http"}
        health = response.json()["paths"][f"{BASE}/health"]["get"]
        assert len(health["security"]) == 2


async def test_route_dependency_authenticates_without_the_middleware(settings: Settings) -> None:
    key = create_api_key(settings)
    engine = Engine(settings)
    services = Services(engine, settings)
    try:
        app = create_app(engine, services, settings)
        add_whoami(app)
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AuthMiddleware]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert_unauthorized(await client.get(f"{BASE}/test/whoami"))
            ok = await client.get(f"{BASE}/test/whoami", headers={"X-API-Key": key})
            assert ok.status_code == 200 and ok.json()["kind"] == "api_key"
            # Routes from included routers carry the app-level dependency too.
            assert_unauthorized(await client.get(f"{BASE}/health"))
            assert_unauthorized(await client.get(f"{BASE}/models", headers={"X-API-Key": "x"}))
            health = await client.get(f"{BASE}/health", headers={"X-API-Key": key})
            assert health.status_code == 200
    finally:
        await shutdown(engine, services)


# -- API keys --------------------------------------------------------------------


def test_key_create_list_revoke_verify(tmp_path: Path) -> None:
    store = Store(tmp_path / DATABASE_FILE)
    clock = [1000.0]
    keys = ApiKeyStore(store, b"k" * 32, clock=lambda: clock[0])
    created = keys.create("ci")
    assert re.fullmatch(r"aiide_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", created.key)
    assert created.key.split("_")[1] == created.info.id
    other = keys.create("laptop")
    assert [k.name for k in keys.list_keys()] == ["ci", "laptop"]
    assert keys.active_count() == 2

    assert keys.verify(created.key).status is KeyStatus.VALID
    assert keys.list_keys()[0].last_used_at is not None
    wrong_secret = created.key[:-4] + ("AAAA" if not created.key.endswith("AAAA") else "BBBB")
    assert keys.verify(wrong_secret).status is KeyStatus.UNKNOWN
    unknown_id = "aiide_000000000000_" + created.key.split("_", 2)[2]
    assert keys.verify(unknown_id).status is KeyStatus.UNKNOWN
    for malformed in ("", "aiide_", "x" * 5000, created.key + "x", created.key.upper()):
        assert keys.verify(malformed).status in (KeyStatus.MALFORMED, KeyStatus.UNKNOWN)

    # Found valid, the key is trusted for a second without reading the store;
    # revoked by another process (another store over the same file), it is
    # refused once that second is over; revoked through this store, at once.
    assert keys.verify(other.key).status is KeyStatus.VALID
    other_store = Store(tmp_path / DATABASE_FILE)
    ApiKeyStore(other_store, b"k" * 32).revoke(other.info.id)
    other_store.close()
    assert keys.verify(other.key).status is KeyStatus.VALID
    clock[0] += 1.0
    assert keys.verify(other.key).status is KeyStatus.REVOKED
    assert keys.verify(other.key[:-1] + "x").status is KeyStatus.UNKNOWN
    other = keys.create("laptop")
    assert keys.verify(other.key).status is KeyStatus.VALID

    revoked = keys.revoke(created.info.id)
    assert revoked is not None and revoked.revoked and revoked.revoked_at is not None
    assert keys.revoke(created.info.id) == revoked  # revoking twice changes nothing
    assert keys.revoke("ffffffffffff") is None
    assert keys.verify(created.key).status is KeyStatus.REVOKED
    assert keys.verify(other.key).status is KeyStatus.VALID
    assert keys.active_count() == 1
    with pytest.raises(ValueError):
        keys.create("")
    with pytest.raises(ValueError):
        keys.create("bad\nname")
    store.close()


def test_only_digests_are_stored(tmp_path: Path) -> None:
    store = Store(tmp_path / DATABASE_FILE)
    keys = ApiKeyStore.in_data_dir(store, tmp_path)
    made = [keys.create(f"k{i}").key for i in range(3)]
    keys.verify(made[0])
    store.close()  # checkpoints the WAL into the main file

    raw = b"".join(p.read_bytes() for p in tmp_path.glob(f"{DATABASE_FILE}*"))
    for key in made:
        secret_part = key.split("_", 2)[2]
        assert secret_part.encode() not in raw
        assert key.encode() not in raw
    server_secret = bytes.fromhex((tmp_path / SERVER_SECRET_FILE).read_text().strip())
    with sqlite3.connect(tmp_path / DATABASE_FILE) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(api_keys)")]
        rows = db.execute("SELECT id, digest FROM api_keys ORDER BY created_at, id").fetchall()
    assert "digest" in columns and not {"key", "secret"} & set(columns)
    expected = {
        key.split("_")[1]: hmac.new(server_secret, key.encode(), hashlib.sha256).hexdigest()
        for key in made
    }
    assert dict(rows) == expected
    assert stat.S_IMODE((tmp_path / SERVER_SECRET_FILE).stat().st_mode) == 0o600


def test_a_digest_from_another_server_secret_does_not_verify(tmp_path: Path) -> None:
    store = Store(tmp_path / DATABASE_FILE)
    key = ApiKeyStore(store, b"a" * 32).create("x").key
    assert ApiKeyStore(store, b"b" * 32).verify(key).status is KeyStatus.UNKNOWN
    store.close()


async def test_revoked_and_wrong_keys_over_http(settings: Settings) -> None:
    store = Store(settings.data_dir / DATABASE_FILE)
    keys = ApiKeyStore.in_data_dir(store, settings.data_dir)
    created = keys.create("client")
    async with serving(settings) as (_, client):
        ok = await client.get(f"{BASE}/test/whoami", headers={"X-API-Key": created.key})
        assert ok.json() == {"id": f"key:{created.info.id}", "kind": "api_key"}
        keys.revoke(created.info.id)  # as `ai-ide keys revoke` would, from another connection
        # The server trusts a key it found valid for a second (TRUST_VALID_SECONDS).
        deadline = time.monotonic() + TRUST_VALID_SECONDS + 1.0
        while True:
            revoked = await client.get(f"{BASE}/health", headers={"X-API-Key": created.key})
            if revoked.status_code != 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert_unauthorized(revoked, "key_revoked")
        forged = created.key[:-1] + ("a" if created.key[-1] != "a" else "b")
        fresh = keys.create("other")
        assert (
            await client.get(f"{BASE}/health", headers={"X-API-Key": fresh.key})
        ).status_code == 200
        assert_unauthorized(
            await client.get(f"{BASE}/health", headers={"X-API-Key": forged}), "invalid_key"
        )
        twice = await client.get(
            f"{BASE}/health", headers=[("X-API-Key", fresh.key), ("X-API-Key", fresh.key)]
        )
        assert_unauthorized(twice, "duplicate_credentials")
    store.close()


# -- first start -------------------------------------------------------------------


async def test_first_start_writes_a_private_key_file(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(tmp_path / "data", tiny_models)
    key_file = settings.data_dir / INITIAL_KEY_FILE
    assert not key_file.exists()
    async with serving(settings) as (app, client):
        assert app.state.authenticator.initial_key_file == key_file
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((settings.data_dir / SERVER_SECRET_FILE).stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        response = await client.get(f"{BASE}/health", headers={"X-API-Key": key})
        assert response.status_code == 200
    # A second start reuses it.
    async with serving(settings) as (app, _):
        assert app.state.authenticator.initial_key_file == key_file
        assert [k.name for k in app.state.authenticator.keys.list_keys()] == ["initial"]
        assert key_file.read_text().strip() == key


def test_initial_key_rules(tmp_path: Path) -> None:
    store = Store(tmp_path / DATABASE_FILE)
    keys = ApiKeyStore.in_data_dir(store, tmp_path)
    # JWT configured: no key is made.
    assert ensure_initial_key(keys, tmp_path, needed=False) is None
    assert keys.active_count() == 0
    path = ensure_initial_key(keys, tmp_path, needed=True)
    assert path == tmp_path / INITIAL_KEY_FILE
    first = path.read_text().strip()
    assert ensure_initial_key(keys, tmp_path, needed=True) == path
    assert keys.active_count() == 1
    # Once its key is revoked the file is not advertised; with no active key left a
    # new one replaces it (the owner can read the file anyway, so no access widens).
    keys.revoke(first.split("_")[1])
    assert ensure_initial_key(keys, tmp_path, needed=False) is None
    assert ensure_initial_key(keys, tmp_path, needed=True) == path
    assert path.read_text().strip() != first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.close()


async def test_no_key_file_when_jwt_is_configured(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(tmp_path / "data", tiny_models, auth={"jwt_secret": SECRET})
    async with serving(settings) as (app, client):
        assert app.state.authenticator.initial_key_file is None
        assert not (settings.data_dir / INITIAL_KEY_FILE).exists()
        assert_unauthorized(await client.get(f"{BASE}/health"))
        token = hs256(claims())
        ok = await client.get(f"{BASE}/health", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


# -- JWT ---------------------------------------------------------------------------


@pytest.fixture
def hs_settings(tmp_path: Path, tiny_models: dict[str, Path]) -> Settings:
    return make_settings(
        tmp_path / "data",
        tiny_models,
        auth={
            "jwt_secret": SECRET,
            "jwt_issuer": "https://issuer.test",
            "jwt_audience": "ai-ide",
            "jwt_leeway_seconds": 30,
        },
    )


def good(**overrides: Any) -> dict[str, Any]:
    return claims(**{"iss": "https://issuer.test", "aud": "ai-ide", **overrides})


async def test_valid_token_names_the_caller(hs_settings: Settings) -> None:
    async with serving(hs_settings) as (_, client):
        token = hs256(good(sub="user-42"))
        response = await client.get(
            f"{BASE}/test/whoami", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.json() == {"id": "jwt:user-42", "kind": "jwt"}
        lower = await client.get(f"{BASE}/health", headers={"Authorization": f"bearer {token}"})
        assert lower.status_code == 200
        # Leeway: expired 10 s ago, within the configured 30 s.
        skewed = hs256(good(exp=int(time.time()) - 10, nbf=int(time.time()) + 10))
        within = await client.get(f"{BASE}/health", headers={"Authorization": f"Bearer {skewed}"})
        assert within.status_code == 200


def _hmac_sign(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (
            lambda: forge({"alg": "none", "typ": "JWT"}, good(), lambda _: b""),
            "algorithm_not_allowed",
        ),
        (
            lambda: forge({"alg": "None", "typ": "JWT"}, good(), lambda _: b""),
            "algorithm_not_allowed",
        ),
        (
            lambda: jwt.encode(good(), SECRET + "x" * 24, algorithm="HS512"),
            "algorithm_not_allowed",
        ),
        (lambda: hs256(good(), secret="t" * 40), "invalid_signature"),
        (
            lambda: (
                hs256(good(sub="alice")).rsplit(".", 2)[0]
                + "."
                + b64url(json.dumps(good(sub="admin")).encode())
                + "."
                + hs256(good(sub="alice")).rsplit(".", 1)[1]
            ),
            "invalid_signature",
        ),
        (lambda: hs256(good(exp=None)), "missing_claim"),
        (lambda: hs256(good(sub=None)), "missing_claim"),
        (lambda: hs256(good(exp=int(time.time()) - 31)), "token_expired"),
        (lambda: hs256(good(exp=int(time.time()) - 3600)), "token_expired"),
        (lambda: hs256(good(nbf=int(time.time()) + 120)), "token_not_yet_valid"),
        (lambda: hs256(good(iat=int(time.time()) + 120)), "token_not_yet_valid"),
        (lambda: hs256(good(iss="https://evil.test")), "invalid_issuer"),
        (lambda: hs256(claims(aud="ai-ide")), "missing_claim"),  # no iss
        (lambda: hs256(good(aud="someone-else")), "invalid_audience"),
        (lambda: hs256(claims(iss="https://issuer.test")), "missing_claim"),  # no aud
        (lambda: hs256(good(exp="tomorrow")), "malformed_token"),
        (lambda: hs256(good(sub="")), "invalid_subject"),
        (lambda: hs256(good(sub="a\nb")), "invalid_subject"),
        (lambda: hs256(good(sub=42)), "invalid_token"),
        (lambda: "not.a.jwt", "malformed_token"),
        (lambda: "a" * 100, "malformed_token"),
        (lambda: hs256(good(pad="x" * MAX_TOKEN_BYTES)), "token_too_large"),
    ],
    ids=[
        "alg-none",
        "alg-None",
        "wrong-alg-hs512",
        "other-secret",
        "tampered-payload",
        "no-exp",
        "no-sub",
        "expired-past-leeway",
        "expired-long-ago",
        "future-nbf",
        "future-iat",
        "wrong-iss",
        "missing-iss",
        "wrong-aud",
        "missing-aud",
        "non-numeric-exp",
        "empty-sub",
        "control-char-sub",
        "non-string-sub",
        "garbage",
        "no-dots",
        "oversized",
    ],
)
async def test_jwt_attacks_are_401(
    hs_settings: Settings, make_token: Callable[[], str], reason: str
) -> None:
    token = make_token()
    async with serving(hs_settings) as (_, client):
        response = await client.get(f"{BASE}/health", headers={"Authorization": f"Bearer {token}"})
        assert_unauthorized(response, reason)


async def test_absurd_header_sizes_are_refused_before_parsing(hs_settings: Settings) -> None:
    async with serving(hs_settings) as (_, client):
        huge = "a" * 20_000
        response = await client.get(f"{BASE}/health", headers={"Authorization": f"Bearer {huge}"})
        assert response.status_code == 431
        assert response.json()["error"]["code"] == "HEADERS_TOO_LARGE"
        assert (await client.get(f"{BASE}/health")).status_code == 401


def test_bad_tokens_are_rejected_quickly(hs_settings: Settings) -> None:
    verifier = JwtVerifier(hs_settings.auth)
    bad = [
        "a" * (MAX_TOKEN_BYTES + 1),
        "x" * 10_000_000,
        forge({"alg": "none"}, good(), lambda _: b""),
        hs256(good(exp=1)),
        hs256(good(), secret="t" * 40),
        "e30." * 2000,
    ]
    started = time.perf_counter()
    for _ in range(100):
        for token in bad:
            with pytest.raises(AuthError):
                verifier.verify(token)
    # 600 rejections; a few microseconds each (generous bound for slow CI machines).
    assert time.perf_counter() - started < 2.0


async def test_rs256_pinned_rejects_the_public_key_used_as_hmac_secret(
    tmp_path: Path, tiny_models: dict[str, Path], rsa_key: rsa.RSAPrivateKey
) -> None:
    pem = public_pem(rsa_key)
    key_file = tmp_path / "jwt.pub.pem"
    key_file.write_bytes(pem)
    settings = make_settings(
        tmp_path / "data",
        tiny_models,
        auth={"jwt_public_key_file": key_file, "jwt_algorithms": ["RS256"]},
    )
    async with serving(settings) as (_, client):
        good_token = jwt.encode(claims(), rsa_key, algorithm="RS256")
        ok = await client.get(
            f"{BASE}/test/whoami", headers={"Authorization": f"Bearer {good_token}"}
        )
        assert ok.json() == {"id": "jwt:alice", "kind": "jwt"}
        # The classic confusion attack: HS256 "signed" with the server's public key.
        confused = forge({"alg": "HS256", "typ": "JWT"}, claims(), _hmac_sign(pem))
        response = await client.get(
            f"{BASE}/health", headers={"Authorization": f"Bearer {confused}"}
        )
        assert_unauthorized(response, "algorithm_not_allowed")
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        foreign = jwt.encode(claims(), other_key, algorithm="RS256")
        response = await client.get(
            f"{BASE}/health", headers={"Authorization": f"Bearer {foreign}"}
        )
        assert_unauthorized(response, "invalid_signature")
        ps = jwt.encode(claims(), rsa_key, algorithm="PS256")  # same key, unpinned algorithm
        response = await client.get(f"{BASE}/health", headers={"Authorization": f"Bearer {ps}"})
        assert_unauthorized(response, "algorithm_not_allowed")


def test_es256_key_and_mismatched_key_types(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_file = tmp_path / "ec.pem"
    ec_file.write_bytes(public_pem(ec_key))
    verifier = JwtVerifier(AuthSettings(jwt_public_key_file=ec_file, jwt_algorithms=["ES256"]))
    assert verifier.verify(jwt.encode(claims(sub="bob"), ec_key, algorithm="ES256")) == "bob"
    with pytest.raises(AuthError) as info:
        verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256"))
    assert info.value.reason == "algorithm_not_allowed"
    # An EC key with RS256 pinned is a configuration error at start, not per request.
    with pytest.raises(ValueError, match="does not fit RS256"):
        JwtVerifier(AuthSettings(jwt_public_key_file=ec_file))
    weak = tmp_path / "weak.pem"
    weak.write_bytes(public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(ValueError, match="too weak"):
        JwtVerifier(AuthSettings(jwt_public_key_file=weak))
    with pytest.raises(ValueError, match="cannot read"):
        JwtVerifier(AuthSettings(jwt_public_key_file=tmp_path / "missing.pem"))


@pytest.mark.parametrize(
    "auth",
    [
        {"api_keys_enabled": False},  # no way in at all: never run open
        {"jwt_secret": "short"},
        {"jwt_secret": SECRET, "jwt_public_key_file": "/k.pem"},
        {"jwt_secret": SECRET, "jwt_algorithms": ["RS256"]},
        {"jwt_secret": SECRET, "jwt_algorithms": ["HS256", "RS256"]},
        {"jwt_public_key_file": "/k.pem", "jwt_algorithms": ["HS256"]},
        {"jwt_algorithms": ["HS256"]},
        {"jwt_secret": SECRET, "jwt_algorithms": ["none"]},
        {"jwt_secret": SECRET, "jwt_leeway_seconds": 61},
    ],
)
def test_unsafe_auth_settings_are_refused(auth: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AuthSettings(**auth)


# -- both headers --------------------------------------------------------------------


async def test_both_headers_must_both_be_valid(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(tmp_path / "data", tiny_models, auth={"jwt_secret": SECRET})
    key = create_api_key(settings)
    token = hs256(claims(sub="carol"))
    bad_token = hs256(claims(sub="carol"), secret="t" * 40)
    bad_key = key[:-1] + ("a" if key[-1] != "a" else "b")
    async with serving(settings) as (_, client):

        async def who(headers: dict[str, str]) -> httpx.Response:
            return await client.get(f"{BASE}/test/whoami", headers=headers)

        both = await who({"X-API-Key": key, "Authorization": f"Bearer {token}"})
        assert both.json() == {"id": "jwt:carol", "kind": "jwt"}
        key_only = await who({"X-API-Key": key})
        assert key_only.json()["kind"] == "api_key"
        jwt_only = await who({"Authorization": f"Bearer {token}"})
        assert jwt_only.json()["id"] == "jwt:carol"
        assert_unauthorized(
            await who({"X-API-Key": key, "Authorization": f"Bearer {bad_token}"}),
            "invalid_signature",
        )
        assert_unauthorized(
            await who({"X-API-Key": bad_key, "Authorization": f"Bearer {token}"}), "invalid_key"
        )
        assert_unauthorized(
            await who({"X-API-Key": key, "Authorization": "Basic dXNlcjpwYXNz"}), "bad_scheme"
        )
        assert_unauthorized(await who({"Authorization": "Bearer "}), "malformed_token")


async def test_keys_only_server_refuses_bearer_tokens(settings: Settings) -> None:
    key = create_api_key(settings)
    async with serving(settings) as (_, client):
        token = hs256(claims())
        response = await client.get(
            f"{BASE}/health", headers={"X-API-Key": key, "Authorization": f"Bearer {token}"}
        )
        assert_unauthorized(response, "jwt_disabled")
        assert "ApiKey" in response.headers["WWW-Authenticate"]


async def test_jwt_only_server_refuses_api_keys(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = make_settings(
        tmp_path / "data", tiny_models, auth={"jwt_secret": SECRET, "api_keys_enabled": False}
    )
    async with serving(settings) as (_, client):
        response = await client.get(
            f"{BASE}/health", headers={"X-API-Key": "aiide_000000000000_" + "a" * 43}
        )
        assert_unauthorized(response, "api_keys_disabled")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- command line --------------------------------------------------------------------


def write_config(directory: Path, tiny_models: dict[str, Path]) -> Path:
    lines = [f'data_dir = "{directory / "data"}"', ""]
    for name, path in tiny_models.items():
        lines += ["[[models]]", f'id = "{name}"', f'name = "{name}"', f'path = "{path}"', ""]
    config = directory / "ai-ide.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def test_keys_cli(
    tmp_path: Path, tiny_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, tiny_models)
    assert cli.main(["keys", "create", "--name", "ci", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert re.fullmatch(r"aiide_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    key_id = key.split("_")[1]
    assert key_id in err and "only now" in err

    assert cli.main(["keys", "list", "--json", "--config", str(config)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {
            "id": key_id,
            "name": "ci",
            "created_at": rows[0]["created_at"],
            "last_used_at": None,
            "revoked_at": None,
        }
    ]
    assert key not in json.dumps(rows)

    assert cli.main(["keys", "revoke", key_id, "--config", str(config)]) == 0
    assert cli.main(["keys", "list", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert key_id in table and "ci" in table and key not in table
    assert cli.main(["keys", "revoke", "ffffffffffff", "--config", str(config)]) == 1
    assert cli.main(["keys", "create", "--name", "", "--config", str(config)]) == 2

    store = Store(tmp_path / "data" / DATABASE_FILE)
    keys = ApiKeyStore.in_data_dir(store, tmp_path / "data")
    assert keys.verify(key).status is KeyStatus.REVOKED
    store.close()


def test_serve_banner_names_the_key_file(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lsp_server import runner

    served: list[str] = []

    async def fake_serve_http(
        engine: Engine,
        services: Services,
        settings: Settings,
        host: str,
        port: int,
        *,
        freeze_heap: bool = False,
    ) -> None:
        served.append(f"{host}:{port} freeze_heap={freeze_heap}")
        await shutdown(engine, services)

    monkeypatch.setattr(runner, "serve_http", fake_serve_http)
    config = write_config(tmp_path, tiny_models)
    assert cli.main(["serve", "--config", str(config), "--port", "9999"]) == 0
    err = capsys.readouterr().err
    key_file = tmp_path / "data" / INITIAL_KEY_FILE
    # The entry point has start-up frozen out of the collector's passes once
    # the app is built (serve_http does it; never this test process's heap).
    assert served == ["127.0.0.1:9999 freeze_heap=True"]
    assert str(key_file) in err
    assert f'curl -H "X-API-Key: $(cat {key_file})"' in err
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
