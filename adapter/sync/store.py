"""The sync's durable state in one SQLAlchemy database: a SQLite file by default, PostgreSQL by URL.

Tables (created on first use; the schema is small and additive, so no migration tool yet):

* ``sync_outbox``     one row per unit of work: a client's records for one partner (states in outbox.py).
* ``sync_deliveries`` per partner and resource: the hash of what the partner last acknowledged, or of what is
                      being sent right now (state ``sending``: after a crash, re-read before sending again).
* ``sync_cursors``    per partner and resource type: the `_lastUpdated` of the newest resource pulled.
* ``sync_received``   resources pulled from partners, stored as received with their source.
* ``sync_referral_updates``  Task status changes mapped back onto the clinic's referrals.
* ``sync_pulled_records``    clinic records (``reported_medication``, ``diagnosis``) mapped from partners' resources,
                             one per version of the source resource, as the record model accepts them.

Times are epoch seconds (float): portable between SQLite and PostgreSQL and trivially comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection

from adapter.tables import create_tables

metadata = MetaData()

outbox = Table(
    "sync_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", String(64), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("owner", String(200)),
    Column("content_hash", String(64)),  # of what the last run released for this partner
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("last_outcome", Text),  # the partner's OperationOutcome (JSON) as received
    Column("report", Text),  # JSON: counts and the withheld list of the last run
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_sync_outbox_due", "state", "next_attempt_at"),
    Index("ix_sync_outbox_partner_client", "partner_id", "client_id"),
)

deliveries = Table(
    "sync_deliveries",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),  # the adapter's id
    Column("state", String(16), nullable=False),  # sending | sent | rejected
    Column("content_hash", String(64), nullable=False),
    Column("remote_id", String(64)),  # the partner's id (differs in conditional mode)
    Column("version_id", String(64)),
    Column("item_id", Integer),
    Column("updated_at", Float, nullable=False),
)

cursors = Table(
    "sync_cursors",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("last_updated", String(40)),  # FHIR instant text as the partner wrote it
    Column("updated_at", Float, nullable=False),
)

received = Table(
    "sync_received",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("remote_id", String(64), primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("last_updated", String(40)),
    Column("source", String(500)),  # the partner's base URL + meta.source when present
    Column("body", Text, nullable=False),
    Column("received_at", Float, nullable=False),
)

referral_updates = Table(
    "sync_referral_updates",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("referral_id", String(128), primary_key=True),  # the clinic's referral record id
    Column("task_version", String(64), primary_key=True),
    Column("status", String(32), nullable=False),  # the referral status it maps to
    Column("task_status", String(32), nullable=False),
    Column("reason", Text),
    Column("changed_at", String(40)),
    Column("received_at", Float, nullable=False),
)

pulled_records = Table(
    "sync_pulled_records",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),  # of the partner's source resource
    Column("remote_id", String(64), primary_key=True),  # the partner's id of it
    Column("version_id", String(64), primary_key=True),  # its version key (pull.version_key)
    Column("kind", String(32), nullable=False),  # reported_medication | diagnosis
    Column("record_id", String(64), nullable=False),  # `pulled-<partner>-<remote id>`: stable across versions
    Column("client_id", String(128), nullable=False),
    Column("record", Text, nullable=False),  # the record as JSON, valid for adapter.records
    Column("received_at", Float, nullable=False),
    Index("ix_sync_pulled_records_record", "record_id", "received_at"),
)


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 (the driver installed with the adapter), not SQLAlchemy's psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (outbox list) do not block the worker
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints in WAL mode; fine for a queue
    cursor.close()


def open_store(url: str) -> Engine:
    """An engine for `url` with the sync tables created."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # Pooled: opening a connection (and setting its pragmas) per transaction cost more than the writes.
        # A killed worker's connections, and SQLite's file locks with them, go away with its process.
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    create_tables(metadata, engine)
    return engine


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], update: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE on SQLite and PostgreSQL."""
    if not rows:
        return
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(update)), list(rows))


@lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table: Table, update: tuple[str, ...]) -> Any:
    """Built once per table and column set: building the statement (its `excluded` column proxies) cost more than
    executing it, on the push's hot path."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg_stmt = pg_insert(table)
        return pg_stmt.on_conflict_do_update(
            index_elements=list(table.primary_key.columns), set_={c: pg_stmt.excluded[c] for c in update}
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    lite_stmt = sqlite_insert(table)
    return lite_stmt.on_conflict_do_update(
        index_elements=list(table.primary_key.columns), set_={c: lite_stmt.excluded[c] for c in update}
    )
