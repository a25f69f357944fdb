"""Record vocabulary -> FHIR CodeableConcepts, through the terminology package's code maps (data, cited)."""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.errors import TerminologyError
from adapter.terminology import codes, systems

# Record referral specialty -> key in codemaps/referrals.yaml.
_REFERRAL_TARGET = {
    "psychiatry": "psychiatry",
    "primary-care": "primary-care",
    "sud-treatment": "sud-treatment",
    "higher-level-of-care": "inpatient-psychiatric",
    "community-resource": "community-resource",
}
# Route of administration -> SNOMED CT, from the R4 example value set SNOMEDCTRouteCodes
# (hl7.org/fhir/R4/valueset-route-codes.html).
_ROUTES = {
    "oral": ("26643006", "Oral route"),
    "sublingual": ("37839007", "Sublingual route"),
    "buccal": ("54471007", "Buccal route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "intravenous": ("47625008", "Intravenous route"),
    "transdermal": ("45890007", "Transdermal route"),
    "nasal": ("46713006", "Nasal route"),
}


def modality_concept(modality: str) -> dict[str, Any]:
    return codes.intervention(modality).fhir_concept()


def specialty_concept(specialty: str) -> dict[str, Any]:
    return codes.referral_target(_REFERRAL_TARGET[specialty]).fhir_concept()


def note_type_concept(note_kind: str) -> dict[str, Any]:
    return codes.note_type(note_kind).fhir_concept()


def visit_type_concept(visit_type: str) -> dict[str, Any]:
    return codes.visit_type(visit_type).fhir_concept()


def encounter_class(visit_type: str, *, telehealth: bool) -> dict[str, Any]:
    """Encounter.class (v3-ActEncounterCode): the visit type's default, or virtual (VR) for telehealth."""
    key = "VR" if telehealth else codes.visit_type(visit_type).encounter_class
    coding = codes.encounter_class(key).coding.fhir_coding()
    if coding is None:  # the code map's schema requires a code; this guards a hand-edited data file
        raise TerminologyError(f"encounter class {key!r} has no code")
    return coding


def route_concept(route: str) -> dict[str, Any]:
    code, display = _ROUTES[route]
    return fhir.concept(systems.SNOMED, code, display)


def score_quantity(value: int, *, unit: str = "{score}", comparator: str | None = None) -> dict[str, Any]:
    """A score as UCUM Quantity (us-core-3: Quantity system is UCUM); LOINC's example unit for scores is {score}."""
    quantity: dict[str, Any] = {"value": value}
    if comparator:
        quantity["comparator"] = comparator
    quantity.update({"unit": unit, "system": systems.UCUM, "code": unit})
    return quantity
