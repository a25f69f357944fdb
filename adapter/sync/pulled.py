"""What a partner's resource means for the clinic's records (pure): the resource, the clinic's index and the
ledger's translation of the partner's ids in, a referral update or a clinic record out (pull.py stores them).

* Task -> the status of the clinic's referral (task_status.py);
* MedicationRequest -> a ``reported_medication`` record (prescribed outside the clinic);
* Condition with an ICD-10-CM code -> a ``diagnosis`` record.

Elements are read with their shape checked: a partner's resource of the wrong shape raises
MalformedResourceError naming the element, never its content.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from adapter.pipeline import MappedChart
from adapter.records import Diagnosis, ReportedMedication
from adapter.sync.plan import Key
from adapter.sync.task_status import NEEDS_REVIEW, TASK_TO_REFERRAL

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 `id`
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
_NO_REASON = "no reason given by the partner"  # a declined or cancelled referral needs one (records/referral.py)

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
    referral_by_task: Mapping[str, str] = field(default_factory=dict)  # Task id -> referral record id

    @classmethod
    def of(cls, charts: Sequence[MappedChart], fhir_base: str) -> ClinicIndex:
        patients: dict[str, tuple[str, str]] = {}
        by_request: dict[str, str] = {}
        by_task: dict[str, str] = {}
        status: dict[str, str] = {}
        referral_system = f"{fhir_base}/sid/referral"
        task_system = f"{fhir_base}/sid/referral-task"
        for chart in charts:
            chart_client = chart.records.client
            for r in chart.resources:
                if r["resourceType"] == "Patient":
                    patients[r["id"]] = (chart.client_id, chart_client.program or "")
                elif r["resourceType"] in ("ServiceRequest", "Task"):
                    system, into = (
                        (referral_system, by_request)
                        if r["resourceType"] == "ServiceRequest"
                        else (task_system, by_task)
                    )
                    for ident in r.get("identifier", []):
                        if ident.get("system") == system:
                            into[r["id"]] = ident["value"]
            for ref in chart.records.referrals:
                status[ref.id] = ref.status
        return cls(patients, by_request, status, task_system, by_task)


class MalformedResourceError(ValueError):
    """A partner resource whose element has a shape FHIR does not allow, where the pull reads it."""


def instant_of(text: object) -> datetime | None:
    """A FHIR instant as an aware UTC datetime (partners differ: Z or +00:00, with or without fractions);
    None when it is not one (no time zone, not a date-time)."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else None


def version_key(r: Mapping[str, Any]) -> str:
    """What tells two versions of a partner's resource apart: ``meta.versionId``, else ``meta.lastUpdated``,
    else a hash of the body (Meta.versionId is 0..1; a partner that keeps none still changes its resources)."""
    meta = object_at(r, "meta", r["resourceType"])
    version, stamp = meta.get("versionId"), meta.get("lastUpdated")
    if version is not None and (not isinstance(version, str) or not _FHIR_ID.fullmatch(version)):
        raise MalformedResourceError(f"{r['resourceType']}.meta.versionId is not a FHIR id")
    if stamp is not None and instant_of(stamp) is None:
        raise MalformedResourceError(f"{r['resourceType']}.meta.lastUpdated is not an instant")
    if version is not None or stamp is not None:
        return str(version if version is not None else stamp)
    canonical = json.dumps(r, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()[:56]


def local_id(rtype: str, rid: str, ours: Mapping[Key, str]) -> str:
    return ours.get((rtype, rid), rid)


# --- mapping back (pure: the resource, the clinic's index and the ledger's id translation) ---------------------


def map_back(
    r: Mapping[str, Any], index: ClinicIndex, partner_id: str, ours: Mapping[Key, str]
) -> tuple[str, dict[str, Any] | None]:
    """What a partner's resource means for the clinic: ("referral", update), ("record", record),
    ("review", problem) or ("none", None)."""
    rtype = r["resourceType"]
    if rtype == "Task":
        problem = task_review(r, index, ours)
        if problem is not None:
            return "review", {"problem": problem}
        update = task_update(r, index, ours)
        return ("referral", update) if update is not None else ("none", None)
    record = None
    if rtype == "MedicationRequest":
        record = medication_record(r, index, partner_id, ours)
    elif rtype == "Condition":
        record = diagnosis_record(r, index, partner_id, ours)
    return ("record", record) if record is not None else ("none", None)


def object_at(node: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = node.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedResourceError(f"{where}.{name} is not an object")
    return value


def _objs(node: Mapping[str, Any], name: str, where: str) -> list[Mapping[str, Any]]:
    value = node.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedResourceError(f"{where}.{name} is not an array of objects")
    return value


def _str(node: Mapping[str, Any], name: str, where: str, limit: int | None = None) -> str | None:
    value = node.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        raise MalformedResourceError(
            f"{where}.{name} is not a string" + (f" of at most {limit} characters" if limit else "")
        )
    return value


def reference_id(reference: Mapping[str, Any], rtype: str, where: str) -> str | None:
    text = _str(reference, "reference", where) or ""
    parts = text.split("/_history/")[0].split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == rtype else None


def _concept_text(cc: Mapping[str, Any], where: str) -> str | None:
    text = _str(cc, "text", where)
    displays = (_str(c, "display", f"{where}.coding") for c in _objs(cc, "coding", where))
    return text or next((d for d in displays if d), None)


def _codes(cc: Mapping[str, Any], where: str, system: str | None = None) -> list[str]:
    out = []
    for c in _objs(cc, "coding", where):
        code = _str(c, "code", f"{where}.coding")
        if code and (system is None or _str(c, "system", f"{where}.coding") == system):
            out.append(code)
    return out


def _task_referral(task: Mapping[str, Any], index: ClinicIndex, ours: Mapping[Key, str]) -> str | None:
    """The clinic's referral a Task is about: by its identifier, by its id (ours), by the ServiceRequest it
    fulfils; the partner's ids are translated to the adapter's first."""
    for ident in _objs(task, "identifier", "Task"):
        if _str(ident, "system", "Task.identifier") == index.task_system:
            value = _str(ident, "value", "Task.identifier")
            if value in index.referral_status:
                return value
    by_id = index.referral_by_task.get(local_id("Task", task["id"], ours))
    if by_id is not None:
        return by_id
    refs = [(object_at(task, "focus", "Task"), "Task.focus")]
    refs += [(b, "Task.basedOn") for b in _objs(task, "basedOn", "Task")]
    for ref, where in refs:
        request_id = reference_id(ref, "ServiceRequest", where)
        if request_id:
            referral = index.referral_by_request.get(local_id("ServiceRequest", request_id, ours))
            if referral is not None:
                return referral
    return None


def task_review(task: Mapping[str, Any], index: ClinicIndex, ours: Mapping[Key, str] | None = None) -> str | None:
    """Why a Task about one of the clinic's referrals needs a person (task_status.NEEDS_REVIEW), or None."""
    meaning = NEEDS_REVIEW.get(_str(task, "status", "Task") or "")
    if meaning is None or _task_referral(task, index, ours or {}) is None:
        return None
    return f"{meaning} (Task.status {task['status']}); the referral model has no such status, it is left unchanged"


def task_update(
    task: Mapping[str, Any], index: ClinicIndex, ours: Mapping[Key, str] | None = None
) -> dict[str, Any] | None:
    """The referral status a partner's Task reports, or None when it is not about one of the clinic's
    referrals, has no referral status (task_status.py), or says nothing new."""
    task_status = _str(task, "status", "Task")
    status = TASK_TO_REFERRAL.get(task_status or "")
    referral = _task_referral(task, index, ours or {})
    if referral is None or status is None or task_status is None:
        return None
    reason = _concept_text(object_at(task, "statusReason", "Task"), "Task.statusReason")
    meta = object_at(task, "meta", "Task")
    changed_at = _str(task, "lastModified", "Task", 40) or _str(meta, "lastUpdated", "Task.meta", 40)
    if status == index.referral_status.get(referral) and not reason and task_status != "on-hold":
        return None  # on-hold maps to in-progress but is news: the partner paused the work
    if status in ("declined", "cancelled") and not reason:
        reason = _NO_REASON
    return {
        "referral_id": referral,
        "task_version": version_key(task),
        "status": status,
        "task_status": task_status,
        "reason": reason,
        "changed_at": changed_at,
    }


def _patient(resource: Mapping[str, Any], index: ClinicIndex, ours: Mapping[Key, str]) -> tuple[str, str] | None:
    where = f"{resource['resourceType']}.subject"
    pid = reference_id(object_at(resource, "subject", resource["resourceType"]), "Patient", where)
    return index.patients.get(local_id("Patient", pid, ours)) if pid else None


def medication_record(
    r: Mapping[str, Any], index: ClinicIndex, partner_id: str, ours: Mapping[Key, str] | None = None
) -> dict[str, Any] | None:
    """A partner's MedicationRequest for one of the clinic's clients -> a `reported_medication` record."""
    w = "MedicationRequest"
    who = _patient(r, index, ours or {})
    status = MEDREQ_TO_REPORTED.get(_str(r, "status", w) or "")
    concept = object_at(r, "medicationCodeableConcept", w)
    text = _concept_text(concept, f"{w}.medicationCodeableConcept")
    if who is None or status is None or not text:
        return None
    rxnorm = next(iter(_codes(concept, f"{w}.medicationCodeableConcept", RXNORM)), None)
    reported_at = _str(r, "authoredOn", w) or _str(object_at(r, "meta", w), "lastUpdated", f"{w}.meta")
    record = {
        "kind": "reported_medication",
        "id": f"pulled-{partner_id}-{r['id']}"[:64],
        "client": who[0],
        "program": who[1],
        "drug": {"text": text, **({"rxnorm": rxnorm} if rxnorm else {})},
        "status": status,
        "reported_at": reported_at,
        "prescriber_text": _str(object_at(r, "requester", w), "display", f"{w}.requester") or f"partner {partner_id}",
    }
    dosages = (_str(d, "text", f"{w}.dosageInstruction") for d in _objs(r, "dosageInstruction", w))
    dosage = next((d for d in dosages if d), None)
    if dosage:
        record["dosage_text"] = dosage
    return _valid(ReportedMedication, record)


def diagnosis_record(
    r: Mapping[str, Any], index: ClinicIndex, partner_id: str, ours: Mapping[Key, str] | None = None
) -> dict[str, Any] | None:
    """A partner's Condition coded in ICD-10-CM for one of the clinic's clients -> a `diagnosis` record."""
    w = "Condition"
    who = _patient(r, index, ours or {})
    code = next(iter(_codes(object_at(r, "code", w), f"{w}.code", ICD10CM)), None)
    if who is None or not code:
        return None
    clinical = next(iter(_codes(object_at(r, "clinicalStatus", w), f"{w}.clinicalStatus")), "active")
    verification = next(iter(_codes(object_at(r, "verificationStatus", w), f"{w}.verificationStatus")), None)
    record: dict[str, Any] = {
        "kind": "diagnosis",
        "id": f"pulled-{partner_id}-{r['id']}"[:64],
        "client": who[0],
        "program": who[1],
        "code": code,
        "clinical_status": clinical,
        "recorded_at": _str(r, "recordedDate", w) or _str(object_at(r, "meta", w), "lastUpdated", f"{w}.meta"),
    }
    if verification:
        record["verification_status"] = verification
    text = _concept_text(object_at(r, "code", w), f"{w}.code")
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
