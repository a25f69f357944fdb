"""The request side of the package (pure): the preauthorization Claim, the Coverage and the payer Organization.

Shaped after Da Vinci PAS 2.x on R4 (docs/ur.md cites the profiles); the package does not claim PAS conformance
(no meta.profile): the clinic has no X12 trace numbers, and the level-of-care codes are the adapter's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapter.fhir import Resource, deterministic_id
from adapter.mappings.context import fhir_instant
from adapter.sync.partners import Partner
from adapter.terminology.systems import NPI
from adapter.ur.catalog import UrRequest, catalog

CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
CLAIM_INFO_CATEGORY = "http://terminology.hl7.org/CodeSystem/claiminformationcategory"
PAS_TEMP_CODES = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes"  # PASSupportingInfoType (PAS 2.1+)
X12_SERVICE_TYPE = "https://codesystem.x12.org/005010/1365"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _ref(resource: Mapping[str, Any]) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def payer_organization(partner: Partner, directory: Sequence[Resource]) -> Resource:
    """The payer as the clinic's directory knows it (same NPI), else a minimal Organization from the partner."""
    npi = partner.recipient.organization_npi
    for organization in directory:
        if any(i.get("system") == NPI and i.get("value") == npi for i in organization.get("identifier") or ()):
            return organization
    return {
        "resourceType": "Organization",
        "id": deterministic_id("Organization", "npi", npi),
        "identifier": [{"system": NPI, "value": npi}],
        "active": True,
        "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": "ins", "display": "Insurance Company"}]}],
        "name": partner.recipient.name or partner.name,
    }


def member_identifier(patient: Resource, member_id: str | None) -> dict[str, Any] | None:
    """The member id: the caller's, else the client's first MB identifier (its system names the plan)."""
    member = {"type": {"coding": [{"system": V2_0203, "code": "MB", "display": "Member Number"}]}}
    if member_id:
        return member | {"value": member_id}
    for identifier in patient.get("identifier") or ():
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding") or ()}
        if "MB" in codes and identifier.get("value"):
            return member | {k: identifier[k] for k in ("system", "value") if k in identifier}
    return None


def coverage(resource_id: str, patient: Resource, payer: Resource, member_id: str | None) -> Resource:
    """A minimal Coverage from what the clinic holds: beneficiary, payer and member id (when known)."""
    out: Resource = {"resourceType": "Coverage", "id": resource_id}
    member = member_identifier(patient, member_id)
    if member is not None:
        out["identifier"] = [member]
    out["status"] = "active"
    if member is not None:
        out["subscriberId"] = member["value"]
    out["beneficiary"] = _ref(patient)
    out["payor"] = [_ref(payer)]
    return out


def _category(code: str, display: str) -> dict[str, Any]:
    return {
        "coding": [
            {"system": PAS_TEMP_CODES, "code": code, "display": display},
            {"system": CLAIM_INFO_CATEGORY, "code": "info", "display": "Information"},
        ]
    }


def supporting_info(request: UrRequest, evidence: Sequence[Resource], worksheet: Resource) -> list[dict[str, Any]]:
    """The requested event dates, every piece of released evidence (scores, plans), then the worksheet."""
    entries: list[dict[str, Any]] = [
        {
            "category": _category("patientEvent", "Patient Event"),
            "timingPeriod": {"start": request.start.isoformat(), "end": request.end.isoformat()},
        }
    ]
    for resource in evidence:
        entry: dict[str, Any] = {"category": _category("additionalInformation", "Additional Information")}
        if resource["resourceType"] == "Observation":
            entry["code"] = resource["code"]
            entry["timingDate"] = str(resource["effectiveDateTime"])[:10]
        entry["valueReference"] = _ref(resource)
        entries.append(entry)
    level = request.level
    entries.append(
        {
            "category": _category("additionalInformation", "Additional Information"),
            "code": {"coding": [{"system": catalog().level_system, "code": level.code, "display": level.display}]},
            "valueReference": _ref(worksheet),
        }
    )
    return [{"sequence": i, **entry} for i, entry in enumerate(entries, start=1)]


def _diagnosis(conditions: Sequence[Resource]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for condition in conditions:
        codings = condition["code"].get("coding") or ()
        if codings:
            text = condition["code"].get("text")
            concept = {"coding": [dict(codings[0])]} | ({"text": text} if text else {})
            out.append({"sequence": len(out) + 1, "diagnosisCodeableConcept": concept})
    return out


def claim(
    *,
    resource_id: str,
    identifier: dict[str, str],
    request: UrRequest,
    patient: Resource,
    payer: Resource,
    provider: dict[str, str],
    coverage_resource: Resource,
    conditions: Sequence[Resource],
    evidence: Sequence[Resource],
    worksheet: Resource,
) -> Resource:
    """The preauthorization Claim: who, for what, when, with which diagnoses and which supporting information."""
    level = request.level
    info = supporting_info(request, evidence, worksheet)
    diagnoses = _diagnosis(conditions)
    item: dict[str, Any] = {"sequence": 1}
    if diagnoses:
        item["diagnosisSequence"] = [d["sequence"] for d in diagnoses]
    item["informationSequence"] = [i["sequence"] for i in info]
    item["category"] = {"coding": [{"system": X12_SERVICE_TYPE, "code": level.service_type}]}
    item["productOrService"] = {"coding": [request.service.coding()]}
    item["servicedPeriod"] = {"start": request.start.isoformat(), "end": request.end.isoformat()}
    out: Resource = {
        "resourceType": "Claim",
        "id": resource_id,
        "identifier": [identifier],
        "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE, "code": level.claim_type}]},
        "use": "preauthorization",
        "patient": _ref(patient),
        "created": fhir_instant(request.instant),
        "insurer": _ref(payer),
        "provider": provider,
        "priority": {"coding": [{"system": PROCESS_PRIORITY, "code": "normal"}]},
        "supportingInfo": info,
    }
    if diagnoses:
        out["diagnosis"] = diagnoses
    out["insurance"] = [{"sequence": 1, "focal": True, "coverage": _ref(coverage_resource)}]
    out["item"] = [item]
    return out
