"""Durable audit storage on SQLAlchemy 2 (``Settings.database_url``, SQLite by default).

The only I/O of the consent package, injected into enforce() as an AuditLog. The table is created on first
use (no migrations framework yet). A disclosure's records are written in one transaction: all or nothing; any
failure raises AuditError, and enforce() then releases nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from adapter.consent.audit import AuditRecord
from adapter.errors import AuditError
from adapter.fhir import dumps, loads
from adapter.tables import create_tables

_metadata = MetaData()
audit_events = Table(
    "audit_event",
    _metadata,
    Column("row_id", Integer, primary_key=True, autoincrement=True),
    Column("disclosure_id", String(64), nullable=False, index=True),
    Column("event_id", String(64), nullable=False),
    Column("recorded", String(40), nullable=False),
    Column("patient", String(200), nullable=False),
    Column("resource", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("recipient", String(300), nullable=False),
    Column("rules", Text, nullable=False),
    Column("event", Text, nullable=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers of the trail never block the release point's writes
    cursor.execute("PRAGMA busy_timeout=30000")  # the API and sync workers share the file
    # The trail is the legal record of a disclosure and is written before anything is sent: each commit is
    # synced to disk (FULL), not only at checkpoints as the sync's own tables are.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class SqlAuditLog:
    """AuditLog on a SQLAlchemy URL. The engine is created lazily; the table on first write."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._engine: Engine | None = None

    def _ready(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self._url)
            if self._engine.dialect.name == "sqlite":
                event.listen(self._engine, "connect", _sqlite_pragmas)
            create_tables(_metadata, self._engine)
        return self._engine

    def record(self, records: Sequence[AuditRecord]) -> None:
        rows = [
            {
                "disclosure_id": r.disclosure_id,
                "event_id": r.event_id,
                "recorded": r.recorded,
                "patient": r.patient,
                "resource": r.resource,
                "outcome": r.outcome,
                "purpose": r.purpose,
                "recipient": r.recipient,
                "rules": r.rules,
                "event": dumps(r.event).decode("utf-8"),
            }
            for r in records
        ]
        try:
            with self._ready().begin() as connection:
                connection.execute(insert(audit_events), rows)
        except SQLAlchemyError as exc:
            # The message names the store, never the records (PHI discipline).
            raise AuditError("the disclosure audit could not be written: nothing was released") from exc

    def events(self, disclosure_id: str | None = None) -> list[dict[str, Any]]:
        """The stored AuditEvents, oldest first (all, or one disclosure's)."""
        query = select(audit_events.c.event).order_by(audit_events.c.row_id)
        if disclosure_id is not None:
            query = query.where(audit_events.c.disclosure_id == disclosure_id)
        try:
            with self._ready().connect() as connection:
                return [loads(row.event) for row in connection.execute(query)]
        except SQLAlchemyError as exc:
            raise AuditError("the disclosure audit could not be read") from exc
