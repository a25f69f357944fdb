"""Medication orders -> US Core MedicationRequest; reported medications -> MedicationStatement (RxNorm)."""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.codes import route_concept
from adapter.mappings.context import MappingContext, fhir_date, fhir_instant
from adapter.mappings.datatypes import drop_empty, meta
from adapter.records import MedicationOrder, ReportedMedication
from adapter.records.medication import Dosage, Drug
from adapter.terminology import systems

_UCUM_UNITS = {"mg": "mg", "mL": "mL", "ug": "ug", "g": "g", "[iU]": "[iU]"}


def medication_concept(drug: Drug) -> dict[str, Any]:
    if drug.rxnorm:
        return fhir.concept(systems.RXNORM, drug.rxnorm, text=drug.text)
    return {"text": drug.text}


def _period(start: Any, end: Any) -> dict[str, Any] | None:
    return drop_empty({"start": fhir_date(start) if start else None, "end": fhir_date(end) if end else None}) or None


def dosage(d: Dosage, start: Any = None, end: Any = None) -> dict[str, Any]:
    repeat = drop_empty(
        {
            "boundsPeriod": _period(start, end),
            "frequency": d.frequency,
            "period": d.period if d.frequency else None,
            "periodUnit": d.period_unit if d.frequency else None,
        }
    )
    dose: dict[str, Any] | None = None
    if d.dose_value is not None and d.dose_unit:
        dose = {"value": d.dose_value, "unit": d.dose_unit.strip("{}"), "system": systems.UCUM, "code": d.dose_unit}
    return drop_empty(
        {
            "text": d.text,
            "timing": {"repeat": repeat} if repeat else None,
            "asNeededBoolean": True if d.as_needed else None,
            "route": route_concept(d.route) if d.route else None,
            "doseAndRate": [{"doseQuantity": dose}] if dose else [],
        }
    )


def _dosage_instruction(order: MedicationOrder) -> list[dict[str, Any]]:
    """The order's dosage, carrying its start and end (R4 has no other place for how long to take it).

    An order without a dosage still gets a Dosage when it has a start or an end: one holding only
    `timing.repeat.boundsPeriod` (valid R4; US Core requires none of Dosage's elements), so the dates are never lost.
    """
    if order.dosage:
        return [dosage(order.dosage, order.start, order.end)]
    bounds = _period(order.start, order.end)
    return [{"timing": {"repeat": {"boundsPeriod": bounds}}}] if bounds else []


def medication_request(order: MedicationOrder, ctx: MappingContext) -> Resource:
    dosage_instruction = _dosage_instruction(order)
    dispense = {"performer": ctx.program_ref(order.program)} if order.dispensed_by_program else None
    return drop_empty(
        {
            "resourceType": "MedicationRequest",
            "id": ctx.id("MedicationRequest", order.id),
            "meta": meta(profiles.US_CORE_MEDICATION_REQUEST),
            "identifier": [ctx.record_identifier("medication-order", order.id)],
            "status": order.status,
            "intent": order.intent,
            "category": [fhir.concept(profiles.MEDREQ_CATEGORY, "outpatient", "Outpatient")],
            "reportedBoolean": False,
            "medicationCodeableConcept": medication_concept(order.drug),
            "subject": ctx.ref("Patient", order.client),
            "encounter": ctx.ref("Encounter", order.visit) if order.visit else None,
            "authoredOn": fhir_instant(order.authored_at),
            "requester": ctx.practitioner_ref(order.prescriber),
            "reasonReference": [ctx.ref("Condition", dx) for dx in order.reasons],
            "dosageInstruction": dosage_instruction,
            "dispenseRequest": dispense,
        }
    )


def medication_statement(med: ReportedMedication, ctx: MappingContext) -> Resource:
    return drop_empty(
        {
            "resourceType": "MedicationStatement",
            "id": ctx.id("MedicationStatement", med.id),
            "identifier": [ctx.record_identifier("reported-medication", med.id)],
            "status": med.status,
            "category": fhir.concept(profiles.MEDSTATEMENT_CATEGORY, "patientspecified", "Patient Specified"),
            "medicationCodeableConcept": medication_concept(med.drug),
            "subject": ctx.ref("Patient", med.client),
            "context": ctx.ref("Encounter", med.visit) if med.visit else None,
            "effectivePeriod": _period(med.start, med.end),
            "dateAsserted": fhir_instant(med.reported_at),
            "informationSource": ctx.ref("Patient", med.client),
            "reasonCode": [{"text": med.reason_text}] if med.reason_text else [],
            "note": [{"text": f"Prescribed outside the clinic by: {med.prescriber_text}"}]
            if med.prescriber_text
            else [],
            "dosage": [{"text": med.dosage_text}] if med.dosage_text else [],
        }
    )


def order_to_fhir(order: MedicationOrder, ctx: MappingContext) -> list[Resource]:
    return [medication_request(order, ctx)]


def reported_to_fhir(med: ReportedMedication, ctx: MappingContext) -> list[Resource]:
    return [medication_statement(med, ctx)]
