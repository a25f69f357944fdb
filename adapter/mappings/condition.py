"""Diagnosis -> US Core Condition (problem-list-item), coded in ICD-10-CM (the code system of DSM-5-TR)."""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.context import MappingContext, fhir_date, fhir_instant
from adapter.mappings.datatypes import drop_empty, meta
from adapter.records import Diagnosis
from adapter.terminology import systems
from adapter.terminology.icd10 import normalize_icd10cm

_CLINICAL_DISPLAY = {
    "active": "Active",
    "recurrence": "Recurrence",
    "relapse": "Relapse",
    "inactive": "Inactive",
    "remission": "Remission",
    "resolved": "Resolved",
}
_VERIFICATION_DISPLAY = {
    "unconfirmed": "Unconfirmed",
    "provisional": "Provisional",
    "differential": "Differential",
    "confirmed": "Confirmed",
    "refuted": "Refuted",
    "entered-in-error": "Entered in Error",
}


def to_fhir(dx: Diagnosis, ctx: MappingContext) -> list[Resource]:
    in_error = dx.verification_status == "entered-in-error"
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": ctx.id("Condition", dx.id),
        "meta": meta(profiles.US_CORE_CONDITION_PROBLEMS),
        "identifier": [ctx.record_identifier("diagnosis", dx.id)],
        # con-5: an entered-in-error condition carries no clinical status.
        "clinicalStatus": (
            None
            if in_error
            else fhir.concept(systems.CONDITION_CLINICAL, dx.clinical_status, _CLINICAL_DISPLAY[dx.clinical_status])
        ),
        "verificationStatus": fhir.concept(
            systems.CONDITION_VER_STATUS, dx.verification_status, _VERIFICATION_DISPLAY[dx.verification_status]
        ),
        "category": [fhir.concept(systems.CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": {
            "coding": [fhir.coding(systems.ICD10CM, normalize_icd10cm(dx.code))],
            **({"text": dx.dsm5_text} if dx.dsm5_text else {}),
        },
        "subject": ctx.ref("Patient", dx.client),
        "encounter": ctx.ref("Encounter", dx.visit) if dx.visit else None,
        "onsetDateTime": fhir_date(dx.onset) if dx.onset else None,
        # con-4 allows an abatement only next to clinicalStatus inactive/remission/resolved, which con-5 removes from
        # an entered-in-error condition: the abatement of a diagnosis entered in error goes too (docs/mapping.md).
        "abatementDateTime": fhir_date(dx.abatement) if dx.abatement and not in_error else None,
        "recordedDate": fhir_instant(dx.recorded_at),
        "recorder": ctx.practitioner_ref(dx.recorded_by) if dx.recorded_by else None,
    }
    return [drop_empty(resource)]
