"""Safety plan -> its own CarePlan: one activity per step, each coded by the section of the plan it belongs to.

The Stanley-Brown sections have no standard codes; they are coded in the adapter's own code system
(profiles.ADAPTER_CODES), with the plan itself categorised as assess-plan plus SNOMED CT 401277000
"Completion of mental health crisis plan" (S: eCQM value set 2.16.840.1.113883.3.526.3.1570).
"""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import narrative, profiles
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import drop_empty, meta
from adapter.records import SafetyPlan
from adapter.records.safety_plan import Contact
from adapter.terminology import systems

SECTIONS: tuple[tuple[str, str], ...] = (
    ("warning_signs", "Warning signs"),
    ("coping_strategies", "Internal coping strategies"),
    ("people_and_places", "People and social settings that provide distraction"),
    ("help_contacts", "People to ask for help"),
    ("professional_contacts", "Professionals or agencies to contact in a crisis"),
    ("crisis_contacts", "Crisis lines"),
    ("means_safety", "Making the environment safe"),
    ("reasons_for_living", "Reasons for living"),
)
_STATUS = {
    "draft": "draft",
    "active": "active",
    "revoked": "revoked",
    "completed": "completed",
    "entered-in-error": "entered-in-error",
}


def _entry_text(entry: str | Contact) -> str:
    if isinstance(entry, str):
        return entry
    parts = [entry.name]
    if entry.role:
        parts.append(f"({entry.role})")
    if entry.phone:
        parts.append(entry.phone)
    return " ".join(parts)


def _section_code(field: str, title: str) -> dict[str, Any]:
    return fhir.concept(profiles.ADAPTER_CODES, f"safety-plan-{field.replace('_', '-')}", title)


def to_fhir(plan: SafetyPlan, ctx: MappingContext) -> list[Resource]:
    activities = []
    blocks = [narrative.heading("Safety plan")]
    detail_status = "in-progress" if plan.status == "active" else "not-started"
    for field, title in SECTIONS:
        entries = [_entry_text(e) for e in getattr(plan, field)]
        blocks.append(narrative.section(title, entries))
        activities += [
            {"detail": {"code": _section_code(field, title), "status": detail_status, "description": text}}
            for text in entries
        ]
    resource = {
        "resourceType": "CarePlan",
        "id": ctx.id("CarePlan", "safety-plan", plan.id),
        "meta": meta(profiles.US_CORE_CAREPLAN),
        "text": narrative.generated(*blocks),
        "identifier": [ctx.record_identifier("safety-plan", plan.id)],
        "status": _STATUS[plan.status],
        "intent": "plan",
        "category": [
            fhir.concept(systems.US_CORE_CAREPLAN_CATEGORY, "assess-plan", "Assessment and Plan of Treatment"),
            fhir.concept(systems.SNOMED, "401277000", "Completion of mental health crisis plan", text="Safety plan"),
        ],
        "title": "Safety plan",
        "subject": ctx.ref("Patient", plan.client),
        "encounter": ctx.ref("Encounter", plan.visit) if plan.visit else None,
        "created": fhir_instant(plan.created_at),
        "author": ctx.practitioner_ref(plan.author),
        "activity": activities,
    }
    return [drop_empty(resource)]
