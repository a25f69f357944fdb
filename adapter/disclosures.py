"""A disclosure on request (`POST /disclosures`): what `bh-adapter disclose` does, on the stored records.

The recipient is named by a partner id (partners file: its NPI, name and attested context), an NPI, or an
organization id of the clinic's directory. The client's Bundle goes through ``adapter.consent.enforce`` (the only
release point, which audits every decision); the result is the released Bundle and a structured decision report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from adapter.consent import Disclosure, DisclosureRequest, Emergency, Identifier, Reason, enforce
from adapter.consent.report import report_lines
from adapter.consent.vocab import rule
from adapter.errors import InputError, NotFoundError, Problem
from adapter.fhir import Resource
from adapter.services import Services
from adapter.sync.partners import NPI_SYSTEM

_NPI = re.compile(r"^[0-9]{10}$")


@dataclass(frozen=True)
class Recipient:
    organizations: tuple[Identifier, ...]
    name: str
    treating_relationship: bool = False
    medical_personnel: bool = False


@dataclass(frozen=True)
class DisclosureAsk:
    """What the caller asks for (the request body, parsed)."""

    client: str
    recipient: str
    purpose: str
    at: datetime | None = None
    emergency: str | None = None
    treating_relationship: bool = False
    recipient_is_medical_personnel: bool = False


def resolve_recipient(services: Services, name: str, ask: DisclosureAsk) -> Recipient:
    """A partner id, an NPI, or a directory organization id -> the identifiers the consent engine matches."""
    partner = services.partners.get(name)
    if partner is not None:
        attested = partner.attested
        return Recipient(
            (Identifier(system=NPI_SYSTEM, value=partner.recipient.organization_npi),),
            partner.recipient.name or partner.name,
            treating_relationship=attested.treating_relationship or ask.treating_relationship,
            medical_personnel=attested.recipient_is_medical_personnel or ask.recipient_is_medical_personnel,
        )
    flags = {
        "treating_relationship": ask.treating_relationship,
        "medical_personnel": ask.recipient_is_medical_personnel,
    }
    if _NPI.match(name):
        return Recipient((Identifier(system=NPI_SYSTEM, value=name),), name, **flags)
    organization = services.clinic().directory.organizations.get(name)
    if organization is None:
        raise InputError(
            "unknown recipient", [Problem("not a partner id, an NPI or a directory organization", field="recipient")]
        )
    identifiers = [Identifier(system=NPI_SYSTEM, value=organization.npi)] if organization.npi else []
    identifiers += [Identifier(system=i.system, value=i.value) for i in organization.identifiers]
    if not identifiers:
        raise InputError(
            "recipient has no identifier", [Problem("the organization has no NPI or identifier", field="recipient")]
        )
    return Recipient(tuple(identifiers), name, **flags)


def _reason(reason: Reason) -> dict[str, Any]:
    return {
        "rule": reason.rule,
        "title": rule(reason.rule).title,
        **({"consent": str(reason.consent)} if reason.consent else {}),
        **({"detail": reason.detail} if reason.detail else {}),
    }


def report(disclosure: Disclosure, resources: dict[str, Resource]) -> dict[str, Any]:
    """The decision as data: what was released, what was withheld and why, the consents considered."""
    request = disclosure.decision.request
    return {
        "id": disclosure.id,
        "recipient": request.recipient_name,
        "purpose": request.purpose,
        "instant": request.instant.isoformat(),
        "emergency": request.emergency.description if request.emergency else None,
        "released": list(disclosure.released),
        "withheld": [{"resource": w.resource, "reasons": [_reason(r) for r in w.reasons]} for w in disclosure.withheld],
        "consents": [
            {
                "consent": str(c.consent),
                "in_force_part2": c.in_force_part2,
                "in_force_hipaa": c.in_force_hipaa,
                "reasons": [_reason(r) for r in c.reasons],
            }
            for c in disclosure.decision.consents
        ],
        "obligations": list(disclosure.decision.obligations),
        "notice": disclosure.notice,
        "audit_records": disclosure.audit_records,
        "text": report_lines(disclosure, resources),
    }


def disclose(services: Services, ask: DisclosureAsk, *, by: str) -> tuple[Resource, dict[str, Any]]:
    """Enforce consent on the client's current Bundle for this recipient and purpose; (released Bundle, report)."""
    mapped = services.mapped_chart(ask.client)
    if mapped is None:
        raise NotFoundError("no such client in the store")
    recipient = resolve_recipient(services, ask.recipient, ask)
    try:
        request = DisclosureRequest(
            recipient_organizations=recipient.organizations,
            recipient_name=recipient.name,
            purpose=ask.purpose,
            instant=ask.at or services.clock(),
            timezone=services.settings.clinic_timezone,
            disclosed_by=by,
            emergency=Emergency(description=ask.emergency, declared_by=by) if ask.emergency else None,
            recipient_is_medical_personnel=recipient.medical_personnel,
            treating_relationship=recipient.treating_relationship,
        )
    except ValidationError as exc:
        problems = [
            Problem(str(e["msg"]).removeprefix("Value error, "), field=".".join(str(p) for p in e["loc"]) or None)
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InputError("the disclosure request is not valid", problems) from exc
    consents = [r for r in mapped.resources if r["resourceType"] == "Consent"]
    disclosure = enforce(mapped.bundle, request, consents, audit=services.audit, validated_input=True)
    resources = {f"{r['resourceType']}/{r['id']}": r for r in mapped.resources}
    return disclosure.bundle, report(disclosure, resources)
