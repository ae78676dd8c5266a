"""The stored tables, defined once for SQLite and PostgreSQL, and how a database gets them.

Every component's queries are SQLAlchemy Core expressions over these
:class:`~sqlalchemy.Table` objects, so one query text serves both dialects
(SQLAlchemy renders ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and leaves it out
on SQLite, which has one writer at a time anyway).

Column types are the ones the SQLite-only versions used (TEXT, INTEGER,
REAL), so a data directory made by an older version opens unchanged: the
tables are found, and :func:`migrate` only adds what later versions need.

Migrating is idempotent and serialised: on PostgreSQL under an advisory
lock (several replicas may start at once), on SQLite under the write lock
of ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    select,
    text,
    update,
)

log = logging.getLogger(__name__)

# Bumped with every entry of _MIGRATIONS.
SCHEMA_VERSION = 4
# pg_advisory_xact_lock key: any constant, the same in every replica ("aiide").
_MIGRATION_LOCK = 0x616969646500


@dataclass(frozen=True)
class Tables:
    """The tables of one database (each :class:`~services.store.Store` has its own)."""

    metadata: MetaData
    schema_version: Table
    jobs: Table
    batches: Table
    api_keys: Table
    inference_events: Table
    inference_totals: Table
    webhook_subscriptions: Table
    webhook_deliveries: Table


def define_tables() -> Tables:
    """A fresh :class:`MetaData` with every table (no shared module-level state)."""
    metadata = MetaData()
    schema_version = Table(
        "schema_version",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("version", Integer, nullable=False),
    )
    jobs = Table(
        "jobs",
        metadata,
        Column("id", Text, primary_key=True),
        Column("kind", Text, nullable=False),
        Column("owner", Text),
        Column("status", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("result", Text),
        Column("error", Text),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("created_at", Text, nullable=False),
        Column("started_at", Text),
        Column("finished_at", Text),
        # Which replica runs the job and until when (Unix time): see services.jobs.
        Column("lease_owner", Text),
        Column("lease_until", Float, nullable=False, server_default=text("0")),
        Index("jobs_status", "status"),
    )
    batches = Table(
        "batches",
        metadata,
        Column("id", Text, primary_key=True),
        Column("owner", Text),
        Column("status", Text, nullable=False),
        Column("background", Integer, nullable=False),
        Column("response", Text),
        Column("created_at", Text, nullable=False),
        Column("finished_at", Text),
        # The replica running a synchronous batch and until when (see services.batch).
        Column("lease_owner", Text),
        Column("lease_until", Float, nullable=False, server_default=text("0")),
    )
    api_keys = Table(
        "api_keys",
        metadata,
        Column("id", Text, primary_key=True),
        Column("name", Text, nullable=False),
        Column("digest", Text, nullable=False),
        Column("created_at", Text, nullable=False),
        Column("last_used_at", Text),
        Column("revoked_at", Text),
        # Creation order within one second (created_at has whole seconds).
        Column("seq", BigInteger),
    )
    inference_events = Table(
        "inference_events",
        metadata,
        # INTEGER on SQLite so that the column is the rowid (as it always was).
        Column("id", Integer().with_variant(BigInteger, "postgresql"), primary_key=True),
        Column("model_id", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("started_at", Float, nullable=False),
        Column("duration_ms", Float, nullable=False),
        Column("success", Integer, nullable=False),
        Column("cached", Integer, nullable=False),
        Column("tokens", Integer, nullable=False),
        Column("error_code", Text),
        Index("inference_events_model_time", "model_id", "started_at"),
        sqlite_autoincrement=True,
    )
    # What the records pruned after the retention period added up to, per
    # model: the all-time counters (Prometheus) are these plus the records kept.
    inference_totals = Table(
        "inference_totals",
        metadata,
        Column("model_id", Text, primary_key=True),
        Column("successes", BigInteger, nullable=False),
        Column("failures", BigInteger, nullable=False),
        Column("cache_hits", BigInteger, nullable=False),
        Column("duration_ms_sum", Float, nullable=False),
        Column("tokens", BigInteger, nullable=False),
    )
    webhook_subscriptions = Table(
        "webhook_subscriptions",
        metadata,
        Column("id", Text, primary_key=True),
        Column("owner", Text, nullable=False),
        Column("url", Text, nullable=False),
        Column("events", Text, nullable=False),
        Column("secret", Text, nullable=False),
        Column("created_at", Text, nullable=False),
        Column("active", Integer, nullable=False, server_default=text("1")),
        Column("disabled_reason", Text),
        Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
        Column("seq", BigInteger),
        Index("webhook_subscriptions_owner", "owner"),
    )
    webhook_deliveries = Table(
        "webhook_deliveries",
        metadata,
        Column("id", Text, primary_key=True),
        Column(
            "subscription_id",
            Text,
            ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("event_id", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("event_timestamp", Text, nullable=False),
        Column("data", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_status_code", Integer),
        Column("last_error", Text),
        Column("next_attempt_at", Float, nullable=False),
        Column("lease_until", Float, nullable=False, server_default=text("0")),
        Column("lease_owner", Text),
        Column("created_at", Float, nullable=False),
        Column("delivered_at", Float),
        Column("finished_at", Float),
        UniqueConstraint("subscription_id", "event_id"),
        Index("webhook_deliveries_due", "status", "next_attempt_at"),
        Index("webhook_deliveries_subscription", "subscription_id", "created_at"),
    )
    return Tables(
        metadata,
        schema_version,
        jobs,
        batches,
        api_keys,
        inference_events,
        inference_totals,
        webhook_subscriptions,
        webhook_deliveries,
    )


def _add_columns(conn: Connection, wanted: tuple[tuple[Table, str, str, str | None], ...]) -> None:
    """Add each (table, column, DDL type, SQLite backfill) that the table lacks.

    Tables made by :func:`migrate` have the columns already (``create_all``
    makes the current shape); tables of an older version get them here.
    """
    inspector = inspect(conn)
    for table, column, ddl, backfill in wanted:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        if column in present:
            continue
        log.info("store: adding %s.%s", table.name, column)
        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column} {ddl}"))
        if backfill is not None and conn.dialect.name == "sqlite":
            # Old rows keep the order they had: their insertion order.
            conn.execute(text(f"UPDATE {table.name} SET {column} = {backfill}"))


def _v2_leases_and_order(conn: Connection, tables: Tables) -> None:
    """Version 2: job leases, and creation order for keys and subscriptions.

    Version 1 was SQLite only: PostgreSQL came with version 2.
    """
    _add_columns(
        conn,
        (
            (tables.jobs, "lease_owner", "TEXT", None),
            (tables.jobs, "lease_until", "REAL NOT NULL DEFAULT 0", None),
            (tables.api_keys, "seq", "BIGINT", "rowid"),
            (tables.webhook_subscriptions, "seq", "BIGINT", "rowid"),
        ),
    )


def _v3_batch_leases(conn: Connection, tables: Tables) -> None:
    """Version 3: synchronous batches name the replica that runs them."""
    real = "DOUBLE PRECISION" if conn.dialect.name == "postgresql" else "REAL"
    _add_columns(
        conn,
        (
            (tables.batches, "lease_owner", "TEXT", None),
            (tables.batches, "lease_until", f"{real} NOT NULL DEFAULT 0", None),
        ),
    )


def _v4_inference_totals(conn: Connection, tables: Tables) -> None:
    """Version 4: inference records are pruned; ``inference_totals`` keeps their sums.

    ``create_all`` in :func:`migrate` makes the table; the version says that a
    server older than this one, which would read its counters from the kept
    records alone, must not open the database.
    """


_MIGRATIONS: tuple[tuple[int, Callable[[Connection, Tables], None]], ...] = (
    (2, _v2_leases_and_order),
    (3, _v3_batch_leases),
    (4, _v4_inference_totals),
)


def migrate(conn: Connection, tables: Tables) -> int:
    """Bring the database in ``conn`` (inside a transaction) to :data:`SCHEMA_VERSION`.

    Returns the version found before (0 for an empty or pre-versioning database).
    """
    if conn.dialect.name == "postgresql":
        # Replicas starting together would otherwise race to CREATE the same tables.
        conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    tables.metadata.create_all(conn, checkfirst=True)
    found = conn.execute(
        select(tables.schema_version.c.version).where(tables.schema_version.c.id == 1)
    ).scalar()
    before = int(found) if found is not None else 0
    if before > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {before}, newer than this server's "
            f"{SCHEMA_VERSION}: upgrade ai-ide"
        )
    for version, step in _MIGRATIONS:
        if version > before:
            step(conn, tables)
    if found is None:
        conn.execute(tables.schema_version.insert().values(id=1, version=SCHEMA_VERSION))
    elif before < SCHEMA_VERSION:
        conn.execute(
            update(tables.schema_version)
            .where(tables.schema_version.c.id == 1)
            .values(version=SCHEMA_VERSION)
        )
    return before
