"""API keys: created once, stored only as HMAC digests, compared in constant time.

A key reads ``aiide_<key id>_<secret>``. The key id is not secret: it finds
the row, then the HMAC-SHA256 of the whole key (keyed with the server secret,
a random value in a 0600 file in the data directory) is compared with
:func:`hmac.compare_digest`. A stolen database therefore yields no usable key,
and neither does a stolen server secret without the database.

No HTTP here: the REST sidecar's auth layer calls :meth:`ApiKeyStore.verify`,
the ``ai-ide keys`` commands call the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from sqlalchemy import func, select, update

from services.store import Store

log = logging.getLogger(__name__)

KEY_PREFIX = "aiide"
SERVER_SECRET_FILE = "server-secret"
INITIAL_KEY_FILE = "api-key"
INITIAL_KEY_NAME = "initial"
# The engine's database file name (engine.Engine opens the same file).

_KEY_ID_BYTES = 6  # 12 hex characters
_SECRET_BYTES = 32  # 43 URL-safe characters
_KEY = re.compile(r"^aiide_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
# Writing last_used on every request would turn each read into a write.
_LAST_USED_EVERY_SECONDS = 60.0
# How long a key found valid is trusted without reading the store again: a
# key revoked by another process (`ai-ide keys revoke`, another replica) is
# refused within this time; one revoked through this store at once.
TRUST_VALID_SECONDS = 1.0


class KeyStatus(Enum):
    """The outcome of checking a presented key."""

    VALID = "valid"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"  # no such key id, or the secret does not match
    REVOKED = "revoked"


@dataclass(frozen=True)
class ApiKeyInfo:
    """A stored key's public facts (never its secret or digest)."""

    id: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        """Whether the key has been revoked."""
        return self.revoked_at is not None


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``key`` is the only copy of the secret and is shown once."""

    info: ApiKeyInfo
    key: str


@dataclass(frozen=True)
class KeyCheck:
    """The result of :meth:`ApiKeyStore.verify`; ``key_id`` is set when the id was well-formed."""

    status: KeyStatus
    key_id: str | None = None


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable and writable only by this user (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # in case the umask or the platform ignored the mode
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_server_secret(data_dir: Path) -> bytes:
    """The HMAC key for API-key digests, created on first use in a 0600 file."""
    path = data_dir / SERVER_SECRET_FILE
    if not path.exists():
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); restricting it to 0600", path, mode)
        os.chmod(path, 0o600)
    text = path.read_text(encoding="ascii").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < 32:
        raise ValueError(f"{path} does not hold a server secret (64 hex characters)")
    return secret


class ApiKeyStore:
    """API keys in the store (SQLite or PostgreSQL)."""

    def __init__(
        self,
        store: Store,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.monotonic,
        trust_valid_seconds: float = TRUST_VALID_SECONDS,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the server secret must be at least 32 bytes")
        self._store = store
        self._keys = store.tables.api_keys
        self._secret = secret
        self._clock = clock
        self._last_used_written: dict[str, float] = {}
        # key id -> (digest of the key found valid, when). Only valid keys: a
        # caller cannot grow it with made-up ones. A request's lookup in the
        # store costs 1-5 ms on a busy 2-core machine (the store's lock, GIL
        # hand-offs around SQLite), next to a completion's 8-28 ms of overhead
        # in front of llama-server; a keystroke burst then reads it once.
        self._trust_seconds = trust_valid_seconds
        self._found_valid: dict[str, tuple[str, float]] = {}

    @property
    def remote(self) -> bool:
        """True when a lookup is a network round trip (keys in PostgreSQL, not a local file)."""
        return self._store.shared

    @classmethod
    def in_data_dir(cls, store: Store, data_dir: Path) -> ApiKeyStore:
        """Keys in ``store``, digested with the server secret kept in ``data_dir``."""
        return cls(store, load_server_secret(data_dir))

    def _digest(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def create(self, name: str) -> CreatedKey:
        """A new key; only its digest is stored, so ``CreatedKey.key`` cannot be shown again."""
        if not _NAME.match(name):
            raise ValueError("a key name is 1 to 64 printable characters")
        for _ in range(5):
            key_id = secrets.token_hex(_KEY_ID_BYTES)
            key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
            if _KEY.match(key) is None:  # token_urlsafe(32) is always 43 characters
                continue
            created = _utc_now()
            t = self._keys
            with self._store.transaction() as tx:
                if tx.execute(select(t.c.id).where(t.c.id == key_id)).first():
                    continue
                tx.execute(
                    t.insert().values(
                        id=key_id,
                        name=name,
                        digest=self._digest(key),
                        created_at=created,
                        seq=select(func.coalesce(func.max(t.c.seq), 0) + 1).scalar_subquery(),
                    )
                )
            return CreatedKey(ApiKeyInfo(key_id, name, created, None, None), key)
        raise RuntimeError("could not allocate a unique key id")

    def list_keys(self) -> list[ApiKeyInfo]:
        """Every key, oldest first, revoked ones included."""
        t = self._keys
        rows = self._store.query(
            select(t.c.id, t.c.name, t.c.created_at, t.c.last_used_at, t.c.revoked_at).order_by(
                t.c.created_at, t.c.seq, t.c.id
            )
        )
        return [
            ApiKeyInfo(r["id"], r["name"], r["created_at"], r["last_used_at"], r["revoked_at"])
            for r in rows
        ]

    def active_count(self) -> int:
        """How many keys are not revoked."""
        t = self._keys
        rows = self._store.query(
            select(func.count().label("n")).select_from(t).where(t.c.revoked_at.is_(None))
        )
        return int(rows[0]["n"])

    def revoke(self, key_id: str) -> ApiKeyInfo | None:
        """Revoke a key: refused at once by this store, within a second by other processes.

        Returns the key's record (already revoked ones unchanged), None if no such key.
        """
        self._found_valid.pop(key_id, None)
        t = self._keys
        self._store.execute(
            update(t)
            .where(t.c.id == key_id, t.c.revoked_at.is_(None))
            .values(revoked_at=_utc_now())
        )
        rows = self._store.query(
            select(t.c.id, t.c.name, t.c.created_at, t.c.last_used_at, t.c.revoked_at).where(
                t.c.id == key_id
            )
        )
        if not rows:
            return None
        r = rows[0]
        return ApiKeyInfo(r["id"], r["name"], r["created_at"], r["last_used_at"], r["revoked_at"])

    def verify(self, key: str, *, record_use: bool = True) -> KeyCheck:
        """Check a presented key: look up its id, then compare digests in constant time.

        A key found valid is trusted for ``trust_valid_seconds`` (1 s) without
        reading the store again; revoking it through this store ends that at
        once. With ``record_use`` a valid key's ``last_used`` is updated (at
        most once a minute).
        """
        match = _KEY.match(key) if len(key) < 128 else None
        if match is None:
            return KeyCheck(KeyStatus.MALFORMED)
        key_id = match.group(1)
        presented = self._digest(key)
        found = self._found_valid.get(key_id)
        now = self._clock()
        if (
            found is not None
            and now - found[1] < self._trust_seconds
            and hmac.compare_digest(presented.encode(), found[0].encode())
        ):
            if record_use:
                self._touch(key_id)
            return KeyCheck(KeyStatus.VALID, key_id)
        t = self._keys
        rows = self._store.query(select(t.c.digest, t.c.revoked_at).where(t.c.id == key_id))
        # Compare against something even for unknown ids, so both paths cost the same.
        stored = rows[0]["digest"] if rows else "0" * len(presented)
        if not hmac.compare_digest(presented.encode(), str(stored).encode()) or not rows:
            return KeyCheck(KeyStatus.UNKNOWN, key_id)
        if rows[0]["revoked_at"] is not None:
            self._found_valid.pop(key_id, None)
            return KeyCheck(KeyStatus.REVOKED, key_id)
        self._found_valid[key_id] = (presented, now)
        if record_use:
            self._touch(key_id)
        return KeyCheck(KeyStatus.VALID, key_id)

    def _touch(self, key_id: str) -> None:
        now = self._clock()
        last = self._last_used_written.get(key_id)
        if last is not None and now - last < _LAST_USED_EVERY_SECONDS:
            return
        self._last_used_written[key_id] = now
        t = self._keys
        self._store.execute(update(t).where(t.c.id == key_id).values(last_used_at=_utc_now()))


def ensure_initial_key(keys: ApiKeyStore, data_dir: Path, *, needed: bool) -> Path | None:
    """Make sure the server can be reached: the path of a file holding a usable key, if any.

    With ``needed`` (API keys are the only way in) and no active key, a key
    named ``initial`` is created and written to ``<data_dir>/api-key``, readable
    only by this user. An existing file is reported only while its key is valid.
    """
    path = data_dir / INITIAL_KEY_FILE
    if needed and keys.active_count() == 0:
        created = keys.create(INITIAL_KEY_NAME)
        write_private_file(path, (created.key + "\n").encode())
        log.warning("created API key %s; it is in %s (mode 0600)", created.info.id, path)
        return path
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    valid = keys.verify(text, record_use=False).status is KeyStatus.VALID
    return path if valid else None
