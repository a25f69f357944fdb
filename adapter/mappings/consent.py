"""The clinic's consent record -> FHIR R4 Consent (scope patient-privacy) with a provision tree.

Root provision: permit, for the named recipients (actor role IRCP), the purposes (v3-ActReason) and the permitted
categories (security labels from v3-ActCode). A nested provision denies the denied categories: nested provisions
are exceptions to their parent. Part 2 consents cite policyRule 42CFRPart2; others the HIPAA authorization policy.
"""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.errors import InputError
from adapter.fhir import Resource
from adapter.mappings import narrative, profiles
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import date_period, drop_empty
from adapter.records import Consent
from adapter.records.consent import Recipient
from adapter.terminology import systems

# Consent categories -> v3-ActCode security labels (hl7.org/fhir/R4/v3/ActCode: _InformationSensitivityPolicy).
CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "behavioral-health": ("BH", "behavioral health information sensitivity"),
    "mental-health": ("MH", "mental health information sensitivity"),
    "substance-use": ("SUD", "substance use disorder information sensitivity"),
    "psychotherapy-notes": ("PSYTHPN", "psychotherapy note information sensitivity"),
    "hiv": ("HIV", "HIV/AIDS information sensitivity"),
    "sexual-violence": ("SDV", "sexual assault, abuse, or domestic violence information sensitivity"),
}
PURPOSE_DISPLAY: dict[str, str] = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "HPAYMT": "healthcare payment",
    "HOPERAT": "healthcare operations",
    "CAREMGT": "care management",
    "COVERAGE": "coverage under policy or program",
    "HRESCH": "healthcare research",
    "PUBHLTH": "public health",
    "HLEGAL": "legal",
    "PATRQT": "patient requested",
}
_IRCP = fhir.concept(systems.V3_PARTICIPATION_TYPE, "IRCP", "information recipient")
_RECIPIENT_CLASS_DISPLAY = {"treating-providers": "My treating providers"}


def _actor(recipient: Recipient, ctx: MappingContext) -> dict[str, Any]:
    npi: str | None = None
    if recipient.organization:
        reference = ctx.organization_ref(recipient.organization)
        npi = ctx.directory.organizations[recipient.organization].npi
    elif recipient.practitioner:
        reference = ctx.practitioner_ref(recipient.practitioner)
        npi = ctx.directory.practitioners[recipient.practitioner].npi
    elif recipient.recipient_class:
        # A general designation (42 CFR 2.31(a)(4)(ii)): no resource to point at, so an identifier the consent
        # engine understands, and a display for people.
        reference = {
            "identifier": {"system": profiles.RECIPIENT_CLASS_SYSTEM, "value": recipient.recipient_class},
            "display": _RECIPIENT_CLASS_DISPLAY[recipient.recipient_class],
        }
    else:  # the record model requires exactly one of the three
        raise InputError("a consent recipient names no organization, practitioner or class")
    if recipient.recipient_class is None and npi:
        # The NPI travels with the reference, so the consent can be matched where the Bundle is not at hand
        # (a partner's consent store, a disclosure request that names the recipient by NPI).
        reference = {**reference, "identifier": {"system": systems.NPI, "value": npi}}
    return {"role": _IRCP, "reference": reference}


def _labels(categories: tuple[str, ...]) -> list[dict[str, Any]]:
    return [fhir.coding(systems.V3_ACT_CODE, *CATEGORY_LABELS[c]) for c in categories]


def is_part2(consent: Consent, ctx: MappingContext) -> bool:
    return consent.part2 if consent.part2 is not None else ctx.is_part2(consent.program)


def to_fhir(consent: Consent, ctx: MappingContext) -> list[Resource]:
    part2 = is_part2(consent, ctx)
    if consent.grantor.related:
        performer = ctx.ref("RelatedPerson", consent.client, consent.grantor.related)
    else:
        performer = ctx.ref("Patient", consent.client)
    provision: dict[str, Any] = {
        "type": "permit",
        "period": date_period(consent.period),
        "actor": [_actor(r, ctx) for r in consent.recipients],
        "purpose": [fhir.coding(systems.V3_ACT_REASON, p, PURPOSE_DISPLAY[p]) for p in consent.purposes],
        "securityLabel": _labels(consent.categories_permitted),
    }
    if consent.categories_denied:
        provision["provision"] = [{"type": "deny", "securityLabel": _labels(consent.categories_denied)}]
    policy_rule = (
        fhir.concept(systems.V3_ACT_CODE, "42CFRPart2", "42 CFR Part2")
        if part2
        else fhir.concept(systems.CONSENT_POLICY, "hipaa-auth", "HIPAA Authorization")
    )
    resource = {
        "resourceType": "Consent",
        "id": ctx.id("Consent", consent.id),
        "identifier": [ctx.record_identifier("consent", consent.id)],
        # A revoked consent is inactive (consent-state-codes); expiry is judged at disclosure time from the period.
        "status": "inactive" if consent.revoked_at else "active",
        "scope": fhir.concept(systems.CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [
            fhir.concept(systems.LOINC, "59284-0", "Patient Consent"),
            fhir.concept(systems.V3_ACT_CODE, "IDSCL", "information disclosure"),
        ],
        "patient": ctx.ref("Patient", consent.client),
        "dateTime": fhir_instant(consent.signed_at),
        "performer": [performer],
        "organization": [ctx.clinic_ref(consent.program)],
        "policyRule": policy_rule,
        "verification": (
            [{"verified": True, "verifiedWith": performer, "verificationDate": fhir_instant(consent.signed_at)}]
            if consent.witness
            else []
        ),
        "provision": drop_empty(provision),
    }
    if consent.description:
        text: dict[str, Any] = dict(narrative.generated(narrative.paragraph(consent.description)))
        text["status"] = "additional"
        resource["text"] = text
    return [drop_empty(resource)]
