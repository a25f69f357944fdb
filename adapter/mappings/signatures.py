"""Signatures on a treatment plan -> a Provenance whose agents and signatures name each signer.

R4 CarePlan has no signature element; Provenance.signature is where FHIR keeps who signed what, and when.
Signature types are ASTM E1762-95 codes (hl7.org/fhir/R4/valueset-signature-type.html).
"""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import meta
from adapter.records import TreatmentPlan
from adapter.records.plan import Signature
from adapter.terminology import systems

_SIGNATURE_TYPE = {
    "author": ("1.2.840.10065.1.12.1.1", "Author's Signature"),
    "supervisor": ("1.2.840.10065.1.12.1.5", "Verification Signature"),
    "client": ("1.2.840.10065.1.12.1.7", "Consent Signature"),
    "guardian": ("1.2.840.10065.1.12.1.7", "Consent Signature"),
}
_AGENT_TYPE = {
    "author": fhir.concept(systems.PROVENANCE_PARTICIPANT_TYPE, "author", "Author"),
    "supervisor": fhir.concept(systems.PROVENANCE_PARTICIPANT_TYPE, "verifier", "Verifier"),
    "client": {"text": "Client agreement"},
    "guardian": {"text": "Guardian agreement"},
}


def _signer(plan: TreatmentPlan, sig: Signature, ctx: MappingContext) -> dict[str, Any]:
    if sig.role == "client":
        return ctx.ref("Patient", plan.client)
    if sig.role == "guardian":
        return ctx.ref("RelatedPerson", plan.client, sig.signer)
    return ctx.practitioner_ref(sig.signer)


def signature_provenance(plan: TreatmentPlan, careplan: Resource, ctx: MappingContext) -> Resource:
    agents = []
    signatures = []
    for sig in plan.signatures:
        who = _signer(plan, sig, ctx)
        agent: dict[str, Any] = {"type": _AGENT_TYPE[sig.role], "who": who}
        if who["reference"].startswith("Practitioner/"):
            # US Core provenance-1: a Practitioner agent acts on behalf of an organization.
            agent["onBehalfOf"] = ctx.clinic_ref(plan.program)
        agents.append(agent)
        code, display = _SIGNATURE_TYPE[sig.role]
        signatures.append(
            {
                "type": [fhir.coding(profiles.SIGNATURE_TYPE, code, display)],
                "when": fhir_instant(sig.signed_at),
                "who": who,
            }
        )
    return {
        "resourceType": "Provenance",
        "id": ctx.id("Provenance", "signatures", plan.id),
        "meta": meta(profiles.US_CORE_PROVENANCE),
        "target": [fhir.reference("CarePlan", careplan["id"])],
        "recorded": fhir_instant(max(s.signed_at for s in plan.signatures)),
        "agent": agents,
        "signature": signatures,
    }
