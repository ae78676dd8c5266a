"""SQLite storage for state that must survive a restart.

One database file under the data directory, in WAL mode. Components (API
keys, async jobs, metrics, webhooks) declare their own tables with
:meth:`Store.ensure_schema` and write through :meth:`Store.transaction`, so
that a state change and the events it causes commit together (the webhook
outbox relies on that).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class Store:
    """A thread-safe SQLite connection with transactions."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        # One connection shared under a lock: writes are small and rare next
        # to inference, and a single writer avoids SQLITE_BUSY entirely.
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._schemas: set[str] = set()
        self.counters = StoreCounters()

    def ensure_schema(self, component: str, statements: Sequence[str]) -> None:
        """Create a component's tables and indexes if they do not exist yet."""
        with self._lock:
            if component in self._schemas:
                return
            with self.transaction() as tx:
                for statement in statements:
                    tx.execute(statement)
            self._schemas.add(component)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate write transaction; commits on success, rolls back on error."""
        with self._lock:
            self.counters.transactions += 1
            if _on_event_loop():
                self.counters.transactions_on_event_loop += 1
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of a read query."""
        with self._lock:
            return list(self._conn.execute(sql, params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; returns rows changed."""
        with self.transaction() as tx:
            return tx.execute(sql, params).rowcount

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
