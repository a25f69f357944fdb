"""Practitioners, organizations and the clinic's programs -> US Core Practitioner and Organization."""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.context import MappingContext
from adapter.mappings.datatypes import address, contact_point, drop_empty, human_name, identifier, meta, npi_identifier
from adapter.records import Organization, Practitioner, Program

_ORG_TYPE_DISPLAY = {
    "prov": "Healthcare Provider",
    "dept": "Hospital Department",
    "ins": "Insurance Company",
    "pay": "Payer",
    "cg": "Community Group",
    "bus": "Non-Healthcare Business or Corporation",
    "other": "Other",
}


def practitioner(record: Practitioner, ctx: MappingContext) -> Resource:
    identifiers = [npi_identifier(record.npi)] if record.npi else []
    identifiers += [identifier(i) for i in record.identifiers]
    if not identifiers:
        # US Core requires an identifier; the clinic's own staff id stands in when there is no NPI.
        identifiers = [ctx.record_identifier("practitioner", record.id)]
    return drop_empty(
        {
            "resourceType": "Practitioner",
            "id": ctx.id("Practitioner", record.id),
            "meta": meta(profiles.US_CORE_PRACTITIONER),
            "identifier": identifiers,
            "active": True,
            "name": [human_name(record.name)],
            "telecom": [contact_point(t) for t in record.telecom],
            "qualification": [{"code": {"text": credential}} for credential in record.credentials],
        }
    )


def organization(record: Organization, ctx: MappingContext) -> Resource:
    identifiers = [npi_identifier(record.npi)] if record.npi else []
    identifiers += [identifier(i) for i in record.identifiers]
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": ctx.id("Organization", record.id),
        "meta": meta(profiles.US_CORE_ORGANIZATION),
        "identifier": identifiers or [ctx.record_identifier("organization", record.id)],
        "active": True,
        "type": (
            [fhir.concept(profiles.ORGANIZATION_TYPE, record.type, _ORG_TYPE_DISPLAY[record.type])]
            if record.type
            else []
        ),
        "name": record.name,
        "telecom": [contact_point(t) for t in record.telecom],
        "address": [address(a) for a in record.address],
        "partOf": ctx.organization_ref(record.part_of) if record.part_of else None,
    }
    return drop_empty(resource)


def program(record: Program, ctx: MappingContext) -> Resource:
    """A program is a department of its organization; a Part 2 program says so in its type, because the
    consent engine judges Part 2 status by the program that produced a record, not by codes."""
    types = [fhir.concept(profiles.ORGANIZATION_TYPE, "dept", _ORG_TYPE_DISPLAY["dept"])]
    if record.part2_program:
        types.append(
            fhir.concept(
                profiles.ADAPTER_CODES,
                "part2-program",
                "Federally assisted substance use disorder program (42 CFR Part 2)",
            )
        )
    identifiers = [npi_identifier(record.npi)] if record.npi else []
    identifiers += [identifier(i) for i in record.identifiers]
    identifiers.append(ctx.record_identifier("program", record.id))
    return drop_empty(
        {
            "resourceType": "Organization",
            "id": ctx.id("Organization", "program", record.id),
            "meta": meta(profiles.US_CORE_ORGANIZATION),
            "identifier": identifiers,
            "active": True,
            "type": types,
            "name": record.name,
            "telecom": [contact_point(t) for t in record.telecom],
            "address": [address(a) for a in record.address],
            "partOf": ctx.organization_ref(record.organization),
        }
    )
