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


def _detail(kind: str, value: str) -> dict[str, str]:
    return {"type": kind, "valueString": value}


def _rules(reasons: Sequence[Reason]) -> str:
    return " ".join(dict.fromkeys(r.rule for r in reasons))


def audit_event(
    *,
    disclosure_id: str,
    decision: Decision,
    item: ResourceDecision,
    released: bool,
    extra: Sequence[Reason],
    patient: str | None,
    security: Sequence[dict[str, Any]],
) -> AuditRecord:
    request = decision.request
    reasons = (*item.reasons, *extra)
    rules = _rules(reasons)
    recipient = request.recipient_organizations[0] if request.recipient_organizations else None
    recipient = recipient or request.recipient_practitioners[0]
    details = [
        _detail("decision", item.status),
        _detail("outcome", "released" if released else "withheld"),
        _detail("rules", rules),
    ]
    details += [_detail("consent", str(ref)) for ref in item.relied_on]
    details += [_detail("obligation", o) for o in item.obligations]
    if request.emergency is not None:
        details += [
            _detail("emergency", request.emergency.description),
            _detail("emergency-declared-by", request.emergency.declared_by),
        ]
    entity: dict[str, Any] = {
        "what": {"reference": item.resource},
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
    }
    if security:
        entity["securityLabel"] = [{k: v for k, v in c.items() if k != "extension"} for c in security]
    entity["detail"] = details
    entities = []
    if patient:
        entities.append(
            {
                "what": {"reference": patient},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    entities.append(entity)
    event_id = uuid5_text(_NAMESPACE, f"{disclosure_id}|{item.resource}")
    recorded = fhir_instant(request.instant)
    outcome_text = ("released: " if released else "withheld: ") + rules
    event = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": DCM, "code": "110106", "display": "Export"},
        "action": "R",
        "recorded": recorded,
        "outcome": "0" if released else "4",
        "outcomeDesc": outcome_text,
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
        "entity": entities,
    }
    return AuditRecord(
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
