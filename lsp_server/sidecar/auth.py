"""Authentication for the REST API: API keys (``X-API-Key``) and JWTs (``Authorization: Bearer``).

A request is authenticated by a valid API key or a valid JWT; when it sends
both headers, both must be valid (the caller is then the token's subject).
:class:`AuthMiddleware` checks every HTTP request before routing, so unknown
paths and the OpenAPI document answer 401 without credentials too; the
:func:`require_caller` dependency on every route makes the same check when
the middleware did not run, and declares the schemes in the OpenAPI document.
Failures are 401 ``UNAUTHORIZED`` in the error envelope, with
``details.reason`` saying which check failed.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import get_default_algorithms
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.config import AuthSettings, Settings
from lsp_server.sidecar.deps import Caller
from lsp_server.sidecar.errors import envelope, new_request_id
from services.keys import ApiKeyStore, KeyStatus, ensure_initial_key
from services.store import Store

API_KEY_HEADER = "X-API-Key"
MAX_TOKEN_BYTES = 8192
_SUBJECT = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")
_REALM = 'realm="ai-ide"'


class AuthError(Exception):
    """Credentials missing or invalid (401); ``reason`` is a stable machine-readable word."""

    status = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


_JWT_REASONS: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.ExpiredSignatureError, "token_expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "token_not_yet_valid", "the token is not valid yet"),
    (jwt.InvalidAudienceError, "invalid_audience", "the token's audience is not accepted"),
    (jwt.InvalidIssuerError, "invalid_issuer", "the token's issuer is not accepted"),
    (jwt.MissingRequiredClaimError, "missing_claim", ""),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed", "the token's algorithm is not allowed"),
    (jwt.InvalidSignatureError, "invalid_signature", "the token's signature does not verify"),
    (jwt.DecodeError, "malformed_token", "the token is not a well-formed JWT"),
)


class JwtVerifier:
    """Verifies tokens with pinned algorithms and one configured key (PyJWT)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.algorithms = settings.pinned_algorithms
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway_seconds
        material: bytes
        if settings.jwt_secret is not None:
            material = settings.jwt_secret.get_secret_value().encode()
        elif settings.jwt_public_key_file is not None:
            try:
                material = settings.jwt_public_key_file.read_bytes()
            except OSError as exc:
                raise ValueError(
                    f"cannot read auth.jwt_public_key_file {settings.jwt_public_key_file}: "
                    f"{exc.strerror}"
                ) from None
        else:
            raise ValueError("JWT authentication needs jwt_secret or jwt_public_key_file")
        # Prepare the key for every pinned algorithm now: a key of the wrong
        # type (an RSA key with ES256, a PEM key as an HMAC secret) fails at
        # start, not per request, and parsing the PEM happens once.
        implementations = get_default_algorithms()
        prepared: Any = None
        for name in self.algorithms:
            try:
                prepared = implementations[name].prepare_key(material)
            except jwt.PyJWTError as exc:
                raise ValueError(f"the configured JWT key does not fit {name}: {exc}") from None
            too_short = implementations[name].check_key_length(prepared)
            if too_short:  # PyJWT would refuse every token with it
                raise ValueError(f"the configured JWT key is too weak for {name}: {too_short}")
        self._key = prepared
        self._jwt = jwt.PyJWT({"enforce_minimum_key_length": True})

    def verify(self, token: str) -> str:
        """The subject of a valid token; :class:`AuthError` otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError(
                f"Bearer token is larger than {MAX_TOKEN_BYTES} bytes", "token_too_large"
            )
        try:
            claims = self._jwt.decode(
                token,
                self._key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            for kind, reason, message in _JWT_REASONS:
                if isinstance(exc, kind):
                    raise AuthError(f"Invalid bearer token: {message or exc}", reason) from None
            raise AuthError("Invalid bearer token", "invalid_token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _SUBJECT.match(subject):
            raise AuthError("Invalid bearer token: unusable 'sub' claim", "invalid_subject")
        return subject


class Authenticator:
    """Turns a request's credential headers into a :class:`Caller`."""

    def __init__(
        self,
        keys: ApiKeyStore | None,
        verifier: JwtVerifier | None,
        initial_key_file: Path | None = None,
    ) -> None:
        if keys is None and verifier is None:
            raise ValueError("no authentication method configured")
        self.keys = keys
        self.verifier = verifier
        self.initial_key_file = initial_key_file
        # A key lookup in PostgreSQL waits on the network: off the event loop
        # (which the language server may share), unlike a local SQLite read.
        self.blocks = keys is not None and keys.remote

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> Authenticator:
        """API keys in ``store`` and/or a JWT verifier, as configured.

        With API keys as the only method and no active key, creates one and
        writes it to ``<data_dir>/api-key`` (mode 0600): the API never runs open.
        """
        auth = settings.auth
        verifier = JwtVerifier(auth) if auth.jwt_enabled else None
        keys: ApiKeyStore | None = None
        initial: Path | None = None
        if auth.api_keys_enabled:
            keys = ApiKeyStore.in_data_dir(store, settings.data_dir)
            initial = ensure_initial_key(keys, settings.data_dir, needed=verifier is None)
        return cls(keys, verifier, initial)

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value listing the accepted schemes."""
        schemes = []
        if self.verifier is not None:
            schemes.append(f"Bearer {_REALM}")
        if self.keys is not None:
            schemes.append(f'ApiKey {_REALM}, header="{API_KEY_HEADER}"')
        return ", ".join(schemes)

    def _key_caller(self, key: str) -> Caller:
        if self.keys is None:
            raise AuthError("API keys are disabled on this server", "api_keys_disabled")
        check = self.keys.verify(key)
        if check.status is KeyStatus.VALID and check.key_id is not None:
            return Caller(id=f"key:{check.key_id}", kind="api_key")
        if check.status is KeyStatus.REVOKED:
            raise AuthError("API key has been revoked", "key_revoked")
        if check.status is KeyStatus.MALFORMED:
            raise AuthError("Malformed API key: expected aiide_<id>_<secret>", "malformed_key")
        raise AuthError("Invalid API key", "invalid_key")

    def _jwt_caller(self, authorization: str) -> Caller:
        if self.verifier is None:
            raise AuthError("Bearer tokens are not accepted by this server", "jwt_disabled")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError("Unsupported authorization scheme: use 'Bearer <jwt>'", "bad_scheme")
        token = token.strip()
        if not token:
            raise AuthError("Empty bearer token", "malformed_token")
        return Caller(id=f"jwt:{self.verifier.verify(token)}", kind="jwt")

    def authenticate(self, authorization: str | None, api_key: str | None) -> Caller:
        """The caller; with both headers both must be valid, and the token names the caller."""
        if authorization is None and api_key is None:
            raise AuthError(
                f"Missing credentials: send '{API_KEY_HEADER}: <key>' or "
                "'Authorization: Bearer <jwt>'",
                "missing_credentials",
            )
        key_caller = self._key_caller(api_key) if api_key is not None else None
        if authorization is None and key_caller is not None:
            return key_caller
        return self._jwt_caller(authorization or "")

    def authenticate_headers(self, headers: list[tuple[bytes, bytes]]) -> Caller:
        """:meth:`authenticate` over raw ASGI headers; a repeated credential header is refused."""
        authorization: list[str] = []
        api_key: list[str] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif lowered == b"x-api-key":
                api_key.append(value.decode("latin-1").strip())
        if len(authorization) > 1 or len(api_key) > 1:
            raise AuthError("Send each credential header once", "duplicate_credentials")
        return self.authenticate(
            authorization[0] if authorization else None, api_key[0] if api_key else None
        )


class AuthMiddleware:
    """Authenticate every request before routing; sets ``scope["state"]["caller"]``."""

    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, public_paths: frozenset[str]
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        headers = scope.get("headers") or []
        try:
            if self.authenticator.blocks:
                caller = await asyncio.to_thread(self.authenticator.authenticate_headers, headers)
            else:
                caller = self.authenticator.authenticate_headers(headers)
            state["caller"] = caller
        except AuthError as exc:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            request_id = state.get("request_id")
            response = envelope(
                exc.status,
                exc.code,
                exc.message,
                request_id if isinstance(request_id, str) else new_request_id(),
                {"reason": exc.reason},
                {"WWW-Authenticate": self.authenticator.challenge()},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


_api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A key from `ai-ide keys create` (or the first-start key file).",
)
_bearer_scheme = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="A JWT signed with the configured key."
)


async def require_caller(
    request: Request,
    _api_key: Annotated[str | None, Security(_api_key_scheme)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
) -> Caller:
    """The authenticated caller (set on ``request.state.caller``); 401 without one."""
    caller = getattr(request.state, "caller", None)
    if isinstance(caller, Caller):
        return caller
    authenticator: Authenticator = request.app.state.authenticator
    try:
        caller = authenticator.authenticate_headers(request.scope.get("headers") or [])
    except AuthError as exc:
        raise StarletteHTTPException(
            exc.status, exc.message, headers={"WWW-Authenticate": authenticator.challenge()}
        ) from None
    request.state.caller = caller
    return caller
