"""Client -> US Core Patient; related parties (guardians, legal representatives) -> US Core RelatedPerson."""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.context import MappingContext, fhir_date
from adapter.mappings.datatypes import address, contact_point, drop_empty, human_name, identifier, meta
from adapter.records import Client, RelatedParty

# v3-RoleCode (hl7.org/fhir/R4/v3/RoleCode): PRN parent, GUARD guardian, POWATT power of attorney,
# ECON emergency contact; a legal representative without a narrower role is a guardian (GUARD) in HL7 terms.
_RELATIONSHIP = {
    "parent": ("PRN", "parent"),
    "guardian": ("GUARD", "guardian"),
    "legal-representative": ("GUARD", "guardian"),
    "power-of-attorney": ("POWATT", "power of attorney"),
    "emergency-contact": ("ECON", "emergency contact"),
}


def patient(client: Client, ctx: MappingContext) -> Resource:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": ctx.id("Patient", client.id),
        "meta": meta(profiles.US_CORE_PATIENT),
        "identifier": [identifier(i) for i in client.identifiers],
        "active": True,
        "name": [human_name(n) for n in client.names],
        "telecom": [contact_point(t) for t in client.telecom],
        "gender": client.gender,
        "birthDate": fhir_date(client.birth_date),
        "address": [address(a) for a in client.address],
    }
    if client.preferred_language:
        resource["communication"] = [
            {
                "language": {"coding": [fhir.coding(profiles.BCP47, client.preferred_language)]},
                "preferred": True,
            }
        ]
    if client.program:
        resource["managingOrganization"] = ctx.clinic_ref(client.program)
    return drop_empty(resource)


def related_person(client: Client, party: RelatedParty, ctx: MappingContext) -> Resource:
    code, display = _RELATIONSHIP[party.relationship]
    relationship = [fhir.concept(profiles.V3_ROLE_CODE, code, display)]
    if party.legal_representative:
        # Marks who may consent for the client (e.g. a minor's guardian).
        relationship.append(fhir.concept(profiles.ADAPTER_CODES, "legal-representative", "Legal representative"))
    return drop_empty(
        {
            "resourceType": "RelatedPerson",
            "id": ctx.id("RelatedPerson", client.id, party.id),
            "meta": meta(profiles.US_CORE_RELATED_PERSON),
            "identifier": [ctx.record_identifier("related-party", client.id, party.id)],
            "active": True,
            "patient": ctx.ref("Patient", client.id),
            "relationship": relationship,
            "name": [human_name(party.name)],
            "telecom": [contact_point(t) for t in party.telecom],
            "address": [address(a) for a in party.address],
        }
    )


def to_fhir(client: Client, ctx: MappingContext) -> list[Resource]:
    return [patient(client, ctx), *(related_person(client, p, ctx) for p in client.related)]
