"""The clinic's records as the service holds them: one row per record, in the adapter's database.

Ingest is all or nothing per batch: the batch is validated like a record file (fields, codes, scores), then
assembled together with what is already stored (every link must resolve); if any record is rejected, nothing of
the batch is stored and every problem is reported, named by record and field. A clinic sends corrections as a
new batch; a half-applied batch could leave, say, a plan whose goals point at a diagnosis that never arrived.

Rows are upserted by (kind, record id) with a content hash, so re-sending an unchanged record changes nothing.
``version`` counts the batches that changed something: readers cache what they build from the records until
it moves (it lives in the database, so several service processes agree on it).

Several processes may ingest at once (API workers, the CLI). A batch is validated against the stored records and
written in one transaction that holds the store's write lock from its first statement (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock on a fixed key), so the state a batch was validated
against is the state it is written onto: a concurrent batch waits, then is validated against this one's result.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, Text, func, select, text, update

from adapter.errors import Problem
from adapter.records import RECORD_ADAPTER, Record
from adapter.records.chart import Clinic, assemble
from adapter.records.loader import LoadResult, SourcedRecord, parse_bytes
from adapter.sync.store import upsert
from adapter.tables import create_tables

STORED = "store"  # the source name of stored records in problems and charts
REQUEST = "request"  # the source name of the records of the batch being ingested
# PostgreSQL advisory-lock key of the record store's ingest (any fixed 64-bit value no other lock of the adapter
# uses; adapter/sync/ledger.py derives its keys from blake2b hashes of partner and resource).
INGEST_LOCK_KEY = 0x62682D7265636F72  # b"bh-recor"

metadata = MetaData()

records_table = Table(
    "clinic_records",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("client_id", String(64), index=True),  # None for directory records
    Column("program", String(64)),
    Column("body", Text, nullable=False),  # the record as canonical JSON (the model's own dump)
    Column("content_hash", String(64), nullable=False),
    Column("ingested_at", String(40), nullable=False),  # ISO instant of the batch that last changed it
)

version_table = Table(
    "clinic_records_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

Outcome = Literal["created", "updated", "unchanged", "rejected", "not stored"]


@dataclass(frozen=True)
class RecordResult:
    """What happened to one record of a batch; `problems` only for rejected ones."""

    kind: str | None
    record_id: str
    client_id: str | None
    outcome: Outcome
    problems: tuple[Problem, ...] = ()


@dataclass
class IngestReport:
    results: list[RecordResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # every problem of a rejected batch
    version: int = 0
    clinic: Clinic | None = None  # the clinic as stored after the batch (None when rejected)

    @property
    def accepted(self) -> bool:
        return not self.problems

    def changed(self) -> list[RecordResult]:
        return [r for r in self.results if r.outcome in ("created", "updated")]


def _canonical(record: Record) -> bytes:
    return record.model_dump_json().encode("utf-8")


def _content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _key(record: Record) -> tuple[str, str]:
    return record.kind, record.id


class RecordStore:
    """Clinic records in SQLAlchemy (SQLite by default, PostgreSQL by URL); tables created on first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(metadata, engine)
        self._lock = threading.Lock()
        self._cache: tuple[int, dict[tuple[str, str], SourcedRecord]] | None = None

    # --- reading -------------------------------------------------------------------------------------------

    def version(self) -> int:
        with self.engine.connect() as conn:
            return _version(conn)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(records_table)) or 0)

    def _stored(self, conn: Connection | None = None) -> tuple[int, dict[tuple[str, str], SourcedRecord]]:
        """Every stored record, parsed once per version; read on `conn` (an ingest's locked transaction) if given.
        The version and the rows are read on one connection: the version is bumped in the transaction that
        changes the rows, so a cached parse of the same version is the same records."""
        if conn is None:
            with self.engine.connect() as own:
                return self._stored(own)
        version = _version(conn)
        cached = self._cache
        if cached is not None and cached[0] == version:
            return cached
        rows = list(conn.execute(select(records_table.c.kind, records_table.c.record_id, records_table.c.body)))
        parsed = {
            (row.kind, row.record_id): SourcedRecord(RECORD_ADAPTER.validate_json(row.body, strict=True), STORED)
            for row in rows
        }
        self._cache = (version, parsed)
        return self._cache

    def clinic(self) -> tuple[int, Clinic]:
        """The stored records assembled into charts, with the version they were read at."""
        version, stored = self._stored()
        return version, assemble(stored[k] for k in sorted(stored))

    # --- writing -------------------------------------------------------------------------------------------

    def ingest_bytes(self, data: bytes, *, xml: bool, at: datetime) -> IngestReport:
        """Parse and validate a request body (one record, a list, or {"records": [...]}; XML `<records>`)."""
        return self.ingest(parse_bytes(data, source=REQUEST, xml=xml), at=at)

    def ingest(self, loaded: LoadResult, *, at: datetime) -> IngestReport:
        """Store a validated batch if every record of it is accepted; otherwise store nothing (module doc)."""
        # The thread lock queues this process's batches without holding a database connection each; the
        # database's write lock (_locked) serializes them with every other process's.
        with self._lock, self._locked() as conn:
            return self._ingest(conn, loaded, at)

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """A transaction that holds the record store's write lock before it reads anything: what an ingest
        validates against cannot change before it commits. Committed when the block ends, rolled back if it
        raises."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # The driver begins its own transactions lazily, at the first write: an explicit BEGIN IMMEDIATE
                # takes the file's write lock now (waiting up to busy_timeout for another writer to commit).
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INGEST_LOCK_KEY})
            yield conn

    def _ingest(self, conn: Connection, loaded: LoadResult, at: datetime) -> IngestReport:
        problems = list(loaded.problems)
        batch: dict[tuple[str, str], SourcedRecord] = {}
        for item in loaded.records:
            key = _key(item.record)
            if key in batch:
                problems.append(
                    Problem("the batch holds this record twice", location=REQUEST, record_id=key[1], field="id")
                )
            batch[key] = item
        version, stored = self._stored(conn)
        merged = {**stored, **batch}
        clinic = assemble(merged[k] for k in sorted(merged))
        for problem in clinic.problems:
            if problem.location == STORED:
                # A stored record that the batch would break (a replaced client, a moved visit ...).
                problem = Problem(
                    f"stored record would no longer be valid: {problem.message}",
                    location=REQUEST,
                    record_id=problem.record_id,
                    field=problem.field,
                )
            problems.append(problem)
        rejected_ids = {p.record_id for p in problems}
        if problems:
            results = [
                RecordResult(
                    kind,
                    rid,
                    getattr(item.record, "client", None) if kind != "client" else rid,
                    "rejected" if rid in rejected_ids else "not stored",
                    tuple(p for p in problems if p.record_id == rid),
                )
                for (kind, rid), item in batch.items()
            ]
            # Records that failed validation never became models: report them by the label the loader gave.
            results += [
                RecordResult(None, rid, None, "rejected", tuple(p for p in problems if p.record_id == rid))
                for rid in dict.fromkeys(p.record_id for p in loaded.problems if p.record_id)
                if not any(r.record_id == rid for r in results)
            ]
            return IngestReport(results=results, problems=problems, version=version)
        return self._write(conn, batch, at, clinic)

    def _write(
        self, conn: Connection, batch: dict[tuple[str, str], SourcedRecord], at: datetime, clinic: Clinic
    ) -> IngestReport:
        """Write an accepted batch on the ingest's locked transaction (committed by the caller's block)."""
        stamp = at.isoformat()
        rows, results = [], []
        existing = {
            (r.kind, r.record_id): r.content_hash
            for r in conn.execute(select(records_table.c.kind, records_table.c.record_id, records_table.c.content_hash))
        }
        for key, item in batch.items():
            record = item.record
            body = _canonical(record)
            digest = _content_hash(body)
            client_id = record.id if record.kind == "client" else getattr(record, "client", None)
            previous = existing.get(key)
            outcome: Outcome = "created" if previous is None else "unchanged" if previous == digest else "updated"
            results.append(RecordResult(record.kind, record.id, client_id, outcome))
            if outcome != "unchanged":
                rows.append(
                    {
                        "kind": record.kind,
                        "record_id": record.id,
                        "client_id": client_id,
                        "program": getattr(record, "program", None),
                        "body": body.decode("utf-8"),
                        "content_hash": digest,
                        "ingested_at": stamp,
                    }
                )
        upsert(conn, records_table, rows, update=["client_id", "program", "body", "content_hash", "ingested_at"])
        stored = conn.scalar(select(version_table.c.version).where(version_table.c.id == 1))
        version = int(stored or 0) + (1 if rows else 0)
        if stored is None:
            conn.execute(version_table.insert(), [{"id": 1, "version": version}])
        elif rows:
            conn.execute(update(version_table).where(version_table.c.id == 1).values(version=version))
        return IngestReport(results=results, version=version, clinic=clinic if rows else None)


def _version(conn: Connection) -> int:
    value = conn.scalar(select(version_table.c.version).where(version_table.c.id == 1))
    return int(value or 0)


def affected_clients(report: IngestReport) -> list[str]:
    """Clients whose FHIR view a batch changed: owners of changed records, and every client whose chart links to
    a changed directory record (a renamed practitioner changes every chart that names them)."""
    changed = report.changed()
    clients = [r.client_id for r in changed if r.client_id]
    directory = {(r.kind, r.record_id) for r in changed if r.client_id is None and r.kind}
    if directory and report.clinic is not None:
        clients += [c.client.id for c in report.clinic.charts if c.directory_links & directory]
    return list(dict.fromkeys(clients))
