"""Pull: bring partners' updates back, incrementally.

Per partner and resource type a cursor (the newest `meta.lastUpdated` seen) is stored durably. A pass searches
``_lastUpdated=ge<cursor>`` and follows `next` links; every resource is stored as received with its source
(``sync_received``, keyed by id and version, so a page seen twice stores nothing twice) and the cursor moves
only when the pass completes: a pass cut short is simply repeated. ``ge``, not ``gt``: resources sharing the
cursor's instant are never skipped; they are deduplicated by version.

What the clinic's model has a place for is mapped back:

* Task -> the status of the clinic's referral (accepted, declined with its reason, completed ...);
* MedicationRequest -> a ``reported_medication`` record (prescribed outside the clinic);
* Condition with an ICD-10-CM code -> a ``diagnosis`` record.

Our own writes come back too (a partner's search returns what we pushed): a resource whose version is the
one the partner acknowledged to us (``sync_deliveries``) is recognized and skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select

from adapter.fhir import dumps
from adapter.pipeline import MappedChart
from adapter.records import Diagnosis, ReportedMedication
from adapter.sync import ledger
from adapter.sync.client import FhirClient, Reply
from adapter.sync.retry import Failure
from adapter.sync.store import cursors, received, referral_updates, upsert

STRICT = {"Prefer": "handling=strict"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

# FHIR R4 Task.status (http://hl7.org/fhir/task-status) -> the clinic's referral status (records/referral.py).
# BSeR (http://hl7.org/fhir/us/bser) uses exactly these statuses for the recipient's answer to a referral.
TASK_TO_REFERRAL = {
    "requested": "sent",
    "received": "sent",
    "accepted": "accepted",
    "rejected": "declined",
    "cancelled": "cancelled",
    "in-progress": "in-progress",
    "on-hold": "accepted",
    "completed": "completed",
    "failed": "declined",
}
# MedicationRequest.status -> MedicationStatement-like status of a reported medication; absent: not mapped.
MEDREQ_TO_REPORTED = {
    "active": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "stopped": "stopped",
    "cancelled": "stopped",
    "draft": "intended",
    "unknown": "unknown",
}


@dataclass(frozen=True)
class ClinicIndex:
    """What pull needs to know about the clinic's records: whose Patient is whose, which referral is which."""

    patients: Mapping[str, tuple[str, str]]  # Patient id -> (client id, registering program)
    referral_by_request: Mapping[str, str]  # ServiceRequest id -> referral record id
    referral_status: Mapping[str, str]  # referral record id -> status in the clinic's records
    task_system: str  # identifier system of the clinic's referral Tasks

    @classmethod
    def of(cls, charts: Sequence[MappedChart], fhir_base: str) -> ClinicIndex:
        patients: dict[str, tuple[str, str]] = {}
        by_request: dict[str, str] = {}
        status: dict[str, str] = {}
        referral_system = f"{fhir_base}/sid/referral"
        for chart in charts:
            chart_client = chart.records.client
            for r in chart.resources:
                if r["resourceType"] == "Patient":
                    patients[r["id"]] = (chart.client_id, chart_client.program or "")
                elif r["resourceType"] == "ServiceRequest":
                    for ident in r.get("identifier", []):
                        if ident.get("system") == referral_system:
                            by_request[r["id"]] = ident["value"]
            for ref in chart.records.referrals:
                status[ref.id] = ref.status
        return cls(patients, by_request, status, f"{fhir_base}/sid/referral-task")


@dataclass
class PullReport:
    partner_id: str
    fetched: dict[str, int] = field(default_factory=dict)  # per type, resources seen
    own: int = 0  # our own writes echoed back
    referral_updates: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # clinic records mapped from partner data
    not_mapped: int = 0  # stored as received; the clinic's model has no place for them
    failures: list[str] = field(default_factory=list)


def cursor(engine: Engine, partner_id: str, resource_type: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(
            select(cursors.c.last_updated).where(
                cursors.c.partner_id == partner_id, cursors.c.resource_type == resource_type
            )
        )


def _set_cursor(engine: Engine, partner_id: str, resource_type: str, value: str, now: float) -> None:
    row = {"partner_id": partner_id, "resource_type": resource_type, "last_updated": value, "updated_at": now}
    with engine.begin() as conn:
        upsert(conn, cursors, [row], ["last_updated", "updated_at"])


def _store(
    engine: Engine, partner_id: str, source: str, resources: Sequence[dict[str, Any]], now: float
) -> list[dict[str, Any]]:
    """Store the page as received; returns the resources whose version was not stored before (the news)."""
    rows = []
    for r in resources:
        meta = r.get("meta") or {}
        origin = source + (f" ({meta['source']})" if meta.get("source") else "")
        rows.append(
            {
                "partner_id": partner_id,
                "resource_type": r["resourceType"],
                "remote_id": r["id"],
                "version_id": str(meta.get("versionId") or ""),
                "last_updated": meta.get("lastUpdated"),
                "source": origin[:500],
                "body": dumps(r).decode(),
                "received_at": now,
            }
        )
    with engine.begin() as conn:
        known = set()
        for rtype in {r["resource_type"] for r in rows}:
            ids = [r["remote_id"] for r in rows if r["resource_type"] == rtype]
            known |= {
                (rtype, row.remote_id, row.version_id)
                for row in conn.execute(
                    select(received.c.remote_id, received.c.version_id).where(
                        received.c.partner_id == partner_id,
                        received.c.resource_type == rtype,
                        received.c.remote_id.in_(ids),
                    )
                )
            }
        upsert(conn, received, rows, ["last_updated", "source", "body"])
    return [
        r
        for r, row in zip(resources, rows, strict=True)
        if (row["resource_type"], row["remote_id"], row["version_id"]) not in known
    ]


def _search_pages(client: FhirClient, resource_type: str, since: str | None) -> Any:
    params = {"_count": str(client.partner.page_size)}
    if since:
        params["_lastUpdated"] = f"ge{since}"
    return client.search_pages(resource_type, params, headers=STRICT)


def pull(
    client: FhirClient,
    engine: Engine,
    index: ClinicIndex,
    *,
    clock: Callable[[], float] = time.time,
) -> PullReport:
    """One incremental pass over every type the partner's `pull` names."""
    partner = client.partner
    report = PullReport(partner.id)
    for rtype in partner.pull:
        since = cursor(engine, partner.id, rtype)
        newest = since
        seen: list[dict[str, Any]] = []
        complete = True
        for page in _search_pages(client, rtype, since):
            if isinstance(page, Failure):
                report.failures.append(f"{rtype}: {page.reason}")
                complete = False
                break
            batch = _matches(page, rtype)
            seen += _store(engine, partner.id, partner.base_url, batch, clock())
            for r in batch:
                stamp = (r.get("meta") or {}).get("lastUpdated")
                if isinstance(stamp, str) and (newest is None or _instant_key(stamp) > _instant_key(newest)):
                    newest = stamp
        report.fetched[rtype] = len(seen)  # new versions only: a page seen again brings nothing
        fresh = _not_ours(engine, partner.id, seen)
        report.own += len(seen) - len(fresh)
        for r in fresh:
            _map_back(engine, partner.id, r, index, report, clock())
        if complete and newest and newest != since:
            _set_cursor(engine, partner.id, rtype, newest, clock())
    return report


def _instant_key(text: str) -> str:
    """Sortable UTC text of a FHIR instant (partners differ: Z or +00:00, with or without fractions)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).isoformat()
    except ValueError:
        return text


def _matches(page: Reply, rtype: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in page.resource().get("entry", []) or []
        if isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == rtype
        and (e.get("search") or {}).get("mode", "match") == "match"
        and e["resource"].get("id")
    ]


def _not_ours(engine: Engine, partner_id: str, resources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the versions the partner acknowledged to us: our own writes echoed back."""
    keys = [(r["resourceType"], r["id"]) for r in resources]
    known = ledger.lookup(engine, partner_id, keys)
    by_remote = {(k[0], d.remote_id): d for k, d in known.items() if d.remote_id}
    out = []
    for r in resources:
        key = (r["resourceType"], r["id"])
        d = known.get(key) or by_remote.get(key)
        version = str((r.get("meta") or {}).get("versionId") or "")
        if d is not None and d.version_id and d.version_id == version:
            continue
        out.append(r)
    return out


def _ref_id(reference: Mapping[str, Any] | None, rtype: str) -> str | None:
    text = str((reference or {}).get("reference") or "")
    parts = text.split("/_history/")[0].split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == rtype else None


def _map_back(
    engine: Engine, partner_id: str, r: dict[str, Any], index: ClinicIndex, report: PullReport, now: float
) -> None:
    rtype = r["resourceType"]
    if rtype == "Task":
        update = task_update(r, index)
        if update is None:
            report.not_mapped += 1
            return
        row = {"partner_id": partner_id, **update, "received_at": now}
        with engine.begin() as conn:
            upsert(conn, referral_updates, [row], ["status", "task_status", "reason", "changed_at", "received_at"])
        report.referral_updates.append(update)
        return
    record = medication_record(r, index, partner_id) if rtype == "MedicationRequest" else None
    if rtype == "Condition":
        record = diagnosis_record(r, index, partner_id)
    if record is None:
        report.not_mapped += 1
    else:
        report.records.append(record)


def task_update(task: Mapping[str, Any], index: ClinicIndex) -> dict[str, Any] | None:
    """The referral status a partner's Task reports, or None when it is not about one of the clinic's
    referrals or says nothing new."""
    referral = next(
        (i.get("value") for i in task.get("identifier", []) or [] if i.get("system") == index.task_system), None
    )
    if referral is None:
        for ref in (task.get("focus"), *(task.get("basedOn") or [])):
            request_id = _ref_id(ref, "ServiceRequest")
            if request_id and request_id in index.referral_by_request:
                referral = index.referral_by_request[request_id]
                break
    status = TASK_TO_REFERRAL.get(str(task.get("status")))
    if referral is None or status is None:
        return None
    reason_cc = task.get("statusReason") or {}
    reason = reason_cc.get("text") or next((c.get("display") for c in reason_cc.get("coding", []) or []), None)
    if status == index.referral_status.get(referral) and not reason:
        return None
    return {
        "referral_id": referral,
        "task_version": str((task.get("meta") or {}).get("versionId") or ""),
        "status": status,
        "task_status": str(task.get("status")),
        "reason": reason,
        "changed_at": task.get("lastModified") or (task.get("meta") or {}).get("lastUpdated"),
    }


def _patient(resource: Mapping[str, Any], index: ClinicIndex) -> tuple[str, str] | None:
    pid = _ref_id(resource.get("subject"), "Patient")
    return index.patients.get(pid) if pid else None


def _concept_text(cc: Mapping[str, Any]) -> str | None:
    return cc.get("text") or next((c.get("display") for c in cc.get("coding", []) or [] if c.get("display")), None)


def medication_record(r: Mapping[str, Any], index: ClinicIndex, partner_id: str) -> dict[str, Any] | None:
    """A partner's MedicationRequest for one of the clinic's clients -> a `reported_medication` record."""
    who = _patient(r, index)
    status = MEDREQ_TO_REPORTED.get(str(r.get("status")))
    concept = r.get("medicationCodeableConcept") or {}
    text = _concept_text(concept)
    if who is None or status is None or not text:
        return None
    rxnorm = next((c.get("code") for c in concept.get("coding", []) or [] if c.get("system") == RXNORM), None)
    reported_at = r.get("authoredOn") or (r.get("meta") or {}).get("lastUpdated")
    record = {
        "kind": "reported_medication",
        "id": f"pulled-{partner_id}-{r['id']}"[:64],
        "client": who[0],
        "program": who[1],
        "drug": {"text": text, **({"rxnorm": rxnorm} if rxnorm else {})},
        "status": status,
        "reported_at": reported_at,
        "prescriber_text": (r.get("requester") or {}).get("display") or f"partner {partner_id}",
    }
    dosage = next((d.get("text") for d in r.get("dosageInstruction", []) or [] if d.get("text")), None)
    if dosage:
        record["dosage_text"] = dosage
    return _valid(ReportedMedication, record)


def diagnosis_record(r: Mapping[str, Any], index: ClinicIndex, partner_id: str) -> dict[str, Any] | None:
    """A partner's Condition coded in ICD-10-CM for one of the clinic's clients -> a `diagnosis` record."""
    who = _patient(r, index)
    code = next(
        (c.get("code") for c in (r.get("code") or {}).get("coding", []) or [] if c.get("system") == ICD10CM), None
    )
    if who is None or not code:
        return None
    clinical = next((c.get("code") for c in (r.get("clinicalStatus") or {}).get("coding", []) or []), "active")
    verification = next((c.get("code") for c in (r.get("verificationStatus") or {}).get("coding", []) or []), None)
    record: dict[str, Any] = {
        "kind": "diagnosis",
        "id": f"pulled-{partner_id}-{r['id']}"[:64],
        "client": who[0],
        "program": who[1],
        "code": code,
        "clinical_status": clinical,
        "recorded_at": r.get("recordedDate") or (r.get("meta") or {}).get("lastUpdated"),
    }
    if verification:
        record["verification_status"] = verification
    text = _concept_text(r.get("code") or {})
    if text:
        record["dsm5_text"] = text
    return _valid(Diagnosis, record)


def _valid(model: type[Diagnosis] | type[ReportedMedication], record: dict[str, Any]) -> dict[str, Any] | None:
    """The record if the clinic's model accepts it (codes, dates, lengths); None otherwise (kept as received)."""
    try:
        model.model_validate(record)
    except ValidationError:
        return None
    return record


def referral_updates_of(engine: Engine, partner_id: str | None = None) -> list[dict[str, Any]]:
    """Every referral status change pulled so far, oldest first."""
    stmt = select(referral_updates).order_by(referral_updates.c.received_at)
    if partner_id is not None:
        stmt = stmt.where(referral_updates.c.partner_id == partner_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def received_of(engine: Engine, partner_id: str, resource_type: str) -> list[dict[str, Any]]:
    stmt = select(received).where(received.c.partner_id == partner_id, received.c.resource_type == resource_type)
    with engine.connect() as conn:
        return [{**dict(r._mapping), "body": json.loads(r.body)} for r in conn.execute(stmt)]
