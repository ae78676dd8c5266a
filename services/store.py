"""Storage for state that must survive a restart: SQLite by default, or PostgreSQL.

One SQL layer for both: SQLAlchemy Core over the tables of
:mod:`services.schema` (the psycopg 3 driver for PostgreSQL, the standard
library's ``sqlite3`` for SQLite). Components (API keys, async jobs, metrics,
webhooks) write through :meth:`Store.transaction`, so that a state change and
the events it causes commit together (the webhook outbox relies on that).

- SQLite (the default: one file under the data directory, WAL mode) is for one
  process: one connection shared under a lock, every write transaction
  ``BEGIN IMMEDIATE``, so there is never an ``SQLITE_BUSY`` half-way through.
- PostgreSQL (``store.url = "postgresql://…"``) is for several API replicas:
  a connection pool, and the claims of jobs and webhook deliveries use
  ``FOR UPDATE SKIP LOCKED`` with leases (see :mod:`services.jobs` and
  :mod:`services.webhooks.outbox`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from engine.config import Settings
from services.schema import Tables, define_tables, migrate

# The database file inside the data directory.
DATABASE_FILE = "ai-ide.sqlite3"


@dataclass
class StoreCounters:
    """How often the database was written, and how often from an event loop.

    A write on a thread that runs an event loop stalls every request on that
    loop; the editor's keystroke path must never cause one.
    """

    transactions: int = 0
    transactions_on_event_loop: int = 0


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def database_url(settings: Settings) -> str:
    """The SQLAlchemy URL for ``settings``: ``store.url``, or the data directory's SQLite file."""
    if settings.store.url is None:
        return f"sqlite:///{settings.data_dir / DATABASE_FILE}"
    return settings.store.url.get_secret_value()


def _sqlalchemy_url(url: str) -> str:
    # postgresql:// is what people write (and what libpq takes); SQLAlchemy
    # would pick psycopg2 for it, which this project does not install.
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


class Store:
    """Transactions and reads over one database, safe to use from any thread.

    ``location`` is a SQLite file path or a database URL (``sqlite:///…``,
    ``postgresql://…``). The schema is created or migrated on open.
    """

    def __init__(
        self,
        location: Path | str,
        *,
        pool_size: int = 5,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        if isinstance(location, Path):
            location = f"sqlite:///{location}"
        url = make_url(_sqlalchemy_url(location))
        self.dialect = url.get_backend_name()
        self.tables: Tables = define_tables()
        self.counters = StoreCounters()
        self._counter_lock = threading.Lock()
        self._local = threading.local()
        self._engine: Engine
        if self.dialect == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
                self.path: Path | None = Path(url.database)
            else:
                self.path = None
            # One connection shared under a lock: writes are small and rare next
            # to inference, and a single writer avoids SQLITE_BUSY entirely.
            self._lock: threading.RLock | None = threading.RLock()
            self._engine = create_engine(
                url,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            event.listen(self._engine, "connect", _sqlite_connect)
            event.listen(self._engine, "begin", _sqlite_begin)
        elif self.dialect == "postgresql":
            self.path = None
            # Replicas serialise on row locks in the database, not on a lock here.
            self._lock = None
            self._engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,  # a database restart must not fail the next request
                connect_args={"connect_timeout": max(1, round(connect_timeout_seconds))},
            )
        else:
            raise ValueError(f"unsupported store URL scheme: {url.drivername}")
        with self.transaction() as tx:
            migrate(tx, self.tables)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store ``settings`` name: ``store.url``, or the SQLite file in ``data_dir``."""
        return cls(
            database_url(settings),
            pool_size=settings.store.pool_size,
            connect_timeout_seconds=settings.store.connect_timeout_seconds,
        )

    @property
    def shared(self) -> bool:
        """True when other processes (replicas) may work on the same data (PostgreSQL)."""
        return self.dialect == "postgresql"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        with self._lock:
            yield

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; commits on success, rolls back on error.

        Reads through :meth:`query` on the same thread inside it see its writes.
        """
        if getattr(self._local, "tx", None) is not None:
            raise RuntimeError("a store transaction is already open on this thread")
        with self._counter_lock:
            self.counters.transactions += 1
            if _on_event_loop():
                self.counters.transactions_on_event_loop += 1
        with self._locked():
            conn = self._engine.connect().execution_options(sqlite_begin="IMMEDIATE")
            self._local.tx = conn
            try:
                with conn.begin():
                    yield conn
            finally:
                self._local.tx = None
                conn.close()

    def query(self, statement: Executable) -> list[RowMapping]:
        """Rows of a read query, by column name."""
        open_tx: Connection | None = getattr(self._local, "tx", None)
        if open_tx is not None:
            return list(open_tx.execute(statement).mappings())
        with self._locked(), self._engine.connect() as conn:
            rows = list(conn.execute(statement).mappings())
            conn.rollback()  # nothing to keep; ends the read snapshot
            return rows

    def execute(self, statement: Executable, params: Sequence[dict[str, Any]] = ()) -> int:
        """Run one write statement in its own transaction; returns rows changed."""
        with self.transaction() as tx:
            result = tx.execute(statement, list(params)) if params else tx.execute(statement)
            return int(result.rowcount)

    def close(self) -> None:
        """Close every connection."""
        with self._locked():
            self._engine.dispose()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would BEGIN lazily (deferred) at
    # the first write; transactions are begun explicitly in _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock at BEGIN, so a transaction never fails with
    # SQLITE_BUSY half-way; reads begin deferred and take no lock in WAL mode.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")
