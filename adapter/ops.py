"""Operations views shared by the API's /ops routes: the sync outbox and the disclosure audit trail.

The audit trail is the consent engine's (one AuditEvent per resource decision, adapter/consent/audit_store.py),
read here as a FHIR searchset Bundle, newest first, filterable by client, recipient, outcome and date.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from adapter.consent.audit_store import audit_events
from adapter.errors import NotFoundError, UsageError
from adapter.fhir import loads
from adapter.services import Services
from adapter.sync import outbox
from adapter.sync.partners import NPI_SYSTEM


@dataclass(frozen=True)
class AuditFilter:
    client: str | None = None  # the client's record id
    recipient: str | None = None  # a partner id, an NPI, or "system|value"
    outcome: str | None = None  # released | withheld
    since: datetime | None = None  # recorded at or after
    until: datetime | None = None  # recorded before


def _recipient(services: Services, name: str) -> str:
    partner = services.partners.get(name)
    if partner is not None:
        return f"{NPI_SYSTEM}|{partner.recipient.organization_npi}"
    return name if "|" in name else f"{NPI_SYSTEM}|{name}"


def _patient(services: Services, client_id: str) -> str | None:
    mapped = services.mapped_chart(client_id)
    if mapped is None:
        return None
    patient = next((r for r in mapped.resources if r["resourceType"] == "Patient"), None)
    return f"Patient/{patient['id']}" if patient else None


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _matching(services: Services, where: AuditFilter) -> Iterator[dict[str, Any]]:
    query = select(audit_events.c.recorded, audit_events.c.event).order_by(audit_events.c.row_id.desc())
    if where.client is not None:
        patient = _patient(services, where.client)
        if patient is None:
            return
        query = query.where(audit_events.c.patient == patient)
    if where.recipient is not None:
        query = query.where(audit_events.c.recipient == _recipient(services, where.recipient))
    if where.outcome is not None:
        query = query.where(audit_events.c.outcome == where.outcome)
    with services.engine.connect() as conn:
        rows = list(conn.execute(query))
    for row in rows:
        # `recorded` keeps the disclosure's own offset: compare instants, not text.
        at = _instant(row.recorded)
        if where.since is not None and at < where.since:
            continue
        if where.until is not None and at >= where.until:
            continue
        yield loads(row.event)


def audit_trail(services: Services, where: AuditFilter, *, offset: int, count: int, base: str) -> dict[str, Any]:
    """One page of AuditEvents as a searchset Bundle with its total and a `next` link (`base` + paging)."""
    if where.outcome not in (None, "released", "withheld"):
        raise UsageError("outcome must be released or withheld")
    events = list(_matching(services, where))
    page = events[offset : offset + count]
    links = [{"relation": "self", "url": f"{base}_offset={offset}&_count={count}"}]
    if offset + count < len(events):
        links.append({"relation": "next", "url": f"{base}_offset={offset + count}&_count={count}"})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(events),
        "link": links,
        "entry": [{"resource": e, "search": {"mode": "match"}} for e in page],
    }


def outbox_status(
    services: Services, *, partner_id: str | None, state: str | None, offset: int, count: int
) -> dict[str, Any]:
    """Counts per partner and state, and one page of items (newest first)."""
    if state is not None and state not in outbox.STATES:
        raise UsageError(f"state must be one of {', '.join(outbox.STATES)}")
    partner_ids = sorted({*services.partners, *([partner_id] if partner_id else [])})
    counts = {p: outbox.counts(services.engine, p) for p in partner_ids if partner_id in (None, p)}
    items = outbox.items(services.engine, state=state, partner_id=partner_id, limit=offset + count)[offset:]
    return {
        "counts": counts,
        "offset": offset,
        "items": [{k: v for k, v in asdict(i).items() if k not in ("report",)} for i in items],
    }


def outbox_retry(services: Services, item_id: int) -> dict[str, Any]:
    try:
        outbox.get(services.engine, item_id)
    except UsageError as exc:
        raise NotFoundError("no such outbox item") from exc
    return asdict(outbox.retry(services.engine, item_id, services.clock().timestamp()))
