"""The API's request log: who called which route, when, and what the answer was (every request, refusals too).

Disclosures have their own trail (one AuditEvent per resource decision, adapter/consent/audit_store.py); this
log says who asked. Rows carry the route template and the path (a client id in a path is no more than the
disclosure trail already holds; the log lives in the same protected database), never bodies or query strings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, insert, select

from adapter.tables import create_tables

metadata = MetaData()

requests_table = Table(
    "api_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False, index=True),  # ISO instant, UTC
    Column("token_id", String(40)),  # None: no token, or one that is not ours
    Column("role", String(20)),
    Column("partner_id", String(64)),
    Column("purpose", String(20)),
    Column("method", String(10), nullable=False),
    Column("route", String(200), nullable=False),  # the route template, e.g. /clients/{client_id}/fhir
    Column("path", String(500), nullable=False),
    Column("status", Integer, nullable=False),
    Column("refusal", String(40)),  # why a request was refused: missing-token, revoked, wrong-role ...
)


@dataclass(frozen=True)
class RequestRecord:
    at: str
    method: str
    route: str
    path: str
    status: int
    token_id: str | None = None
    role: str | None = None
    partner_id: str | None = None
    purpose: str | None = None
    refusal: str | None = None


class RequestLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(metadata, engine)

    def record(self, entry: RequestRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(requests_table), [asdict(entry)])

    def query(
        self,
        *,
        token_id: str | None = None,
        status: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total matching, one page newest first)."""
        conditions: list[Any] = []
        if token_id is not None:
            conditions.append(requests_table.c.token_id == token_id)
        if status is not None:
            conditions.append(requests_table.c.status == status)
        if since is not None:
            conditions.append(requests_table.c.at >= _utc(since))
        if until is not None:
            conditions.append(requests_table.c.at < _utc(until))
        with self.engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(requests_table).where(*conditions)) or 0
            rows = conn.execute(
                select(requests_table)
                .where(*conditions)
                .order_by(requests_table.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return int(total), [dict(r._mapping) for r in rows]


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
