"""The audit trail of a disclosure (pure): one FHIR R4 AuditEvent per resource decision.

Every decision is recorded, released or withheld, HIPAA default or Part 2 consent, emergency or not: who
disclosed (agent, source role), to whom (agent, destination role), what (entity: the resource, with its labels,
the decision, the rules, the consents relied on), the purpose (purposeOfEvent), when (recorded = the disclosure
instant) and the outcome (0 released, 4 withheld). An emergency disclosure also carries its nature and who
declared it (42 CFR 2.51(c)). Storage is injected (:class:`AuditLog`); enforce() releases nothing unless the
whole trail was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adapter.consent.model import Decision, Reason, ResourceDecision
from adapter.consent.vocab import V3_ACT_REASON
from adapter.fhir import Resource, uuid5_text
from adapter.mappings.context import fhir_instant

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
_NAMESPACE = bytes.fromhex("a3c5e8f01b2d4e6f8091a2b3c4d5e6f7")


@dataclass(frozen=True)
class AuditRecord:
    """One row of the audit store: searchable columns and the AuditEvent itself."""

    disclosure_id: str
    event_id: str
    recorded: str
    patient: str
    resource: str
    outcome: str  # "released" | "withheld"
    purpose: str
    recipient: str
    rules: str
    event: Resource


class AuditLog(Protocol):
    """Durable storage for audit records. record() writes all or nothing and raises on failure."""

    def record(self, records: Sequence[AuditRecord]) -> None: ...


class AuditBuffer:
    """An AuditLog in memory: it keeps what the release point records until the caller takes the records and
    writes them, together with others, to the durable log (before anything they describe is sent)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, records: Sequence[AuditRecord]) -> None:
        self.records.extend(records)

    def take(self) -> list[AuditRecord]:
        taken, self.records = self.records, []
        return taken


def _detail(kind: str, value: str) -> dict[str, str]:
    return {"type": kind, "valueString": value}


def _rules(reasons: Sequence[Reason]) -> str:
    return " ".join(dict.fromkeys(r.rule for r in reasons))


@dataclass(frozen=True)
class Audited:
    """One resource decision to record: released or not, the extra reasons, the labels it carried."""

    item: ResourceDecision
    released: bool
    extra: Sequence[Reason]
    security: Sequence[dict[str, Any]]


def audit_events(
    *, disclosure_id: str, decision: Decision, audited: Sequence[Audited], patient: str | None
) -> list[AuditRecord]:
    """One AuditEvent per resource decision of a disclosure. The parts every event of the disclosure has in
    common (who, to whom, why, when) are built once and shared: values are never edited in place."""
    request = decision.request
    recipient = request.recipient_organizations[0] if request.recipient_organizations else None
    recipient = recipient or request.recipient_practitioners[0]
    recorded = fhir_instant(request.instant)
    emergency = (
        [
            _detail("emergency", request.emergency.description),
            _detail("emergency-declared-by", request.emergency.declared_by),
        ]
        if request.emergency is not None
        else []
    )
    common = {
        "type": {"system": DCM, "code": "110106", "display": "Export"},
        "action": "R",
        "recorded": recorded,
    }
    rest = {
        "purposeOfEvent": [{"coding": [{"system": V3_ACT_REASON, "code": request.purpose}]}],
        "agent": [
            {
                "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
                "who": {"display": request.disclosed_by},
                "requestor": True,
            },
            {
                "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
                "who": {
                    "identifier": {"system": recipient.system, "value": recipient.value},
                    **({"display": request.recipient_name} if request.recipient_name else {}),
                },
                "requestor": False,
            },
        ],
        "source": {
            "observer": {"display": "bh-fhir-adapter consent engine"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    patient_entity = (
        {
            "what": {"reference": patient},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
        }
        if patient
        else None
    )
    records = []
    for one in audited:
        item, released = one.item, one.released
        rules = _rules((*item.reasons, *one.extra))
        details = [
            _DECISION[item.status],
            _RELEASED if released else _WITHHELD,
            _detail("rules", rules),
            *(_detail("consent", str(ref)) for ref in item.relied_on),
            *(_detail("obligation", o) for o in item.obligations),
            *emergency,
        ]
        entity: dict[str, Any] = {"what": {"reference": item.resource}, "type": _OBJECT_TYPE, "role": _OBJECT_ROLE}
        if one.security:
            entity["securityLabel"] = [_without_extension(c) for c in one.security]
        entity["detail"] = details
        event_id = uuid5_text(_NAMESPACE, f"{disclosure_id}|{item.resource}")
        event = {
            "resourceType": "AuditEvent",
            "id": event_id,
            **common,
            "outcome": "0" if released else "4",
            "outcomeDesc": ("released: " if released else "withheld: ") + rules,
            **rest,
            "entity": [patient_entity, entity] if patient_entity else [entity],
        }
        records.append(
            AuditRecord(
                disclosure_id=disclosure_id,
                event_id=event_id,
                recorded=recorded,
                patient=patient or "",
                resource=item.resource,
                outcome="released" if released else "withheld",
                purpose=request.purpose,
                recipient=str(recipient),
                rules=rules,
                event=event,
            )
        )
    return records


_DECISION = {status: _detail("decision", status) for status in ("permit", "deny")}
_RELEASED = _detail("outcome", "released")
_WITHHELD = _detail("outcome", "withheld")
_OBJECT_TYPE = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
_OBJECT_ROLE = {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}


def _without_extension(coding: dict[str, Any]) -> dict[str, Any]:
    """AuditEvent.entity.securityLabel: the label without its basis extension."""
    return {k: v for k, v in coding.items() if k != "extension"} if "extension" in coding else coding
