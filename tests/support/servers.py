"""Real PostgreSQL and Redis servers for tests, started on loopback in temporary directories.

PostgreSQL comes from Debian's server binaries (``/usr/lib/postgresql/*/bin``:
``initdb`` and ``pg_ctl``), Redis from ``redis-server``. Each test session
starts at most one of each and stops it at the end; every test gets its own
database (``CREATE DATABASE``) or Redis database number, so tests never see
each other's rows.

Without the binaries the tests that need them skip, saying what to install;
with ``STORE_TESTS=required`` (set by ``.ci/run``) they fail instead, so CI
cannot pass by skipping them.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRED_ENV = "STORE_TESTS"
# initdb refuses to run as root: as root, the server runs as this user.
POSTGRES_USER = "postgres"


def _unavailable(what: str) -> NoReturn:
    """Skip (or, with STORE_TESTS=required, fail) a test whose server cannot start."""
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(f"{what} ({REQUIRED_ENV}=required)", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def _wait_port(port: int, deadline_seconds: float, what: str) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, trust auth on 127.0.0.1 only."""

    bin_dir: Path
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ai-ide-pg-")))
    _databases: Iterator[int] = field(default_factory=itertools.count)

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid", POSTGRES_USER, "--regid", POSTGRES_USER,
                       "--init-groups", "--", *command]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.root)

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        if os.geteuid() == 0:
            account = pwd.getpwnam(POSTGRES_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale", "C")  # fmt: skip
        # Loopback TCP only; the socket in the temp dir; no fsync (throwaway data).
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=200"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")  # fmt: skip
        _wait_port(self.port, 30, "PostgreSQL")

    def stop(self) -> None:
        """Stop the server (it was started by this object) and delete its files."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The URL of one database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@dataclass
class RedisServer:
    """A redis-server on 127.0.0.1 without persistence, in a temporary directory."""

    binary: str
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ai-ide-redis-")))
    process: subprocess.Popen[bytes] | None = None
    _databases: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def start(self) -> None:
        """Start the server and wait until it listens."""
        log = (self.root / "log").open("wb")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--databases", "64"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        _wait_port(self.port, 30, "Redis")

    def stop(self) -> None:
        """Stop the server this object started, by its pid, and delete its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self) -> str:
        """A URL with a database number of its own (up to 63 per session)."""
        return f"redis://127.0.0.1:{self.port}/{next(self._databases) % 64}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (skips without the binaries)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
        server.stop()
        _unavailable(f"PostgreSQL did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Redis server for the session (skips without redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server not found (apt-get install redis-server)")
    server = RedisServer(binary)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        server.stop()
        _unavailable(f"Redis did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store: a SQLite file, then a PostgreSQL database (each test runs on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
