"""Visit -> US Core Encounter; serviceProvider is the program, which is how a visit reveals where care happened."""

from __future__ import annotations

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.codes import encounter_class, visit_type_concept
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import drop_empty, meta
from adapter.records import Visit
from adapter.terminology import systems

# Encounter.participant.type (v3-ParticipationType).
_PARTICIPANT_TYPE = {
    "primary": ("PPRF", "primary performer"),
    "secondary": ("SPRF", "secondary performer"),
    "attender": ("ATND", "attender"),
    "consultant": ("CON", "consultant"),
}


def to_fhir(visit: Visit, ctx: MappingContext) -> list[Resource]:
    period = drop_empty(
        {
            "start": fhir_instant(visit.period.start) if visit.period.start else None,
            "end": fhir_instant(visit.period.end) if visit.period.end else None,
        }
    )
    resource = {
        "resourceType": "Encounter",
        "id": ctx.id("Encounter", visit.id),
        "meta": meta(profiles.US_CORE_ENCOUNTER),
        "identifier": [ctx.record_identifier("visit", visit.id)],
        "status": visit.status,
        "class": encounter_class(visit.type, telehealth=visit.telehealth),
        "type": [visit_type_concept(visit.type)],
        "subject": ctx.ref("Patient", visit.client),
        "participant": [
            {
                "type": [fhir.concept(systems.V3_PARTICIPATION_TYPE, *_PARTICIPANT_TYPE[p.role])],
                "individual": ctx.practitioner_ref(p.practitioner),
            }
            for p in visit.participants
        ],
        "period": period,
        "reasonReference": [ctx.ref("Condition", dx) for dx in visit.diagnoses],
        "location": [{"location": {"display": visit.location}}] if visit.location else [],
        "serviceProvider": ctx.program_ref(visit.program),
    }
    return [drop_empty(resource)]
