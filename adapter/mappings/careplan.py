"""Treatment plan -> US Core CarePlan + Goals + one ServiceRequest per intervention (+ a signature Provenance).

Goals are measurable where the clinic measures them: an instrument's total-score LOINC code as `target.measure`,
the threshold as `detailQuantity` with its comparator, and the due date. Interventions become ServiceRequests
(intent plan) referenced from `CarePlan.activity.reference`, so partners can act on them one by one.
"""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import narrative, profiles
from adapter.mappings.codes import modality_concept, score_quantity
from adapter.mappings.context import MappingContext, fhir_date, fhir_instant
from adapter.mappings.datatypes import date_period, drop_empty, meta
from adapter.mappings.signatures import signature_provenance
from adapter.records import TreatmentPlan
from adapter.records.plan import Goal, Intervention
from adapter.terminology import systems
from adapter.terminology.catalog import instrument

# CarePlan.status -> ServiceRequest.status for the plan's activities (both use request-status).
_ACTIVITY_STATUS = {
    "draft": "draft",
    "active": "active",
    "on-hold": "on-hold",
    "revoked": "revoked",
    "completed": "completed",
    "entered-in-error": "entered-in-error",
}
# US Core ServiceRequest category (SNOMED CT): psychotherapy and similar interventions are counseling.
_COUNSELING = fhir.concept(systems.SNOMED, "409063005", "Counseling")


def _intervention_key(plan: TreatmentPlan, item: Intervention) -> tuple[str, ...]:
    """The id key of an intervention's ServiceRequest. Referrals are ServiceRequests too, keyed ("referral", id):
    a plain (plan id, intervention id) key gave a plan with id "referral" the ids of referrals."""
    return ("treatment-plan-intervention", plan.id, item.id)


def goal(plan: TreatmentPlan, item: Goal, ctx: MappingContext) -> Resource:
    targets: list[dict[str, Any]] = []
    if item.measure:
        inst = instrument(item.measure.instrument)
        if inst.total is None:
            raise ValueError(f"{inst.name} has no total score to measure a goal by")
        targets.append(
            drop_empty(
                {
                    "measure": inst.total.coding.fhir_concept(),
                    "detailQuantity": score_quantity(item.measure.value, comparator=item.measure.comparator),
                    "dueDate": fhir_date(item.due_date) if item.due_date else None,
                }
            )
        )
    elif item.due_date:
        targets.append({"dueDate": fhir_date(item.due_date)})
    return drop_empty(
        {
            "resourceType": "Goal",
            "id": ctx.id("Goal", plan.id, item.id),
            "meta": meta(profiles.US_CORE_GOAL),
            "identifier": [ctx.record_identifier("treatment-plan-goal", plan.id, item.id)],
            # The goals of a plan entered in error were entered in error with it, whatever their own status.
            "lifecycleStatus": "entered-in-error" if plan.status == "entered-in-error" else item.status,
            "description": {"text": item.description},
            "subject": ctx.ref("Patient", plan.client),
            "startDate": fhir_date(item.start_date) if item.start_date else None,
            "target": targets,
            "addresses": [ctx.ref("Condition", dx) for dx in plan.problems],
            "expressedBy": ctx.practitioner_ref(plan.author),
        }
    )


def _timing(intervention: Intervention) -> dict[str, Any] | None:
    freq = intervention.frequency
    if freq is None:
        return None
    return {"repeat": {"frequency": freq.count, "period": freq.period, "periodUnit": freq.unit}}


def activity_request(plan: TreatmentPlan, item: Intervention, ctx: MappingContext) -> Resource:
    code = modality_concept(item.modality)
    if item.description:
        code = {**code, "text": item.description}
    return drop_empty(
        {
            "resourceType": "ServiceRequest",
            "id": ctx.id("ServiceRequest", *_intervention_key(plan, item)),
            "meta": meta(profiles.US_CORE_SERVICE_REQUEST),
            "identifier": [ctx.record_identifier("treatment-plan-intervention", plan.id, item.id)],
            "basedOn": [ctx.ref("CarePlan", plan.id)],
            "status": _ACTIVITY_STATUS[plan.status],
            "intent": "plan",
            "category": [_COUNSELING],
            "code": code,
            "subject": ctx.ref("Patient", plan.client),
            "encounter": ctx.ref("Encounter", plan.visit) if plan.visit else None,
            "occurrenceTiming": _timing(item),
            "authoredOn": fhir_instant(plan.created_at),
            "requester": ctx.practitioner_ref(plan.author),
            "performer": [ctx.practitioner_ref(item.provider)] if item.provider else [],
            "reasonReference": [ctx.ref("Condition", dx) for dx in plan.problems],
        }
    )


def _narrative(plan: TreatmentPlan) -> dict[str, Any]:
    def goal_line(g: Goal) -> str:
        if g.measure:
            m = g.measure
            return f"{g.description} ({m.instrument} total {m.comparator} {m.value} by {g.due_date})"
        return f"{g.description}" + (f" (by {g.due_date})" if g.due_date else "")

    def intervention_line(i: Intervention) -> str:
        freq = f", {i.frequency.count} per {i.frequency.period} {i.frequency.unit}" if i.frequency else ""
        return f"{i.modality}{': ' + i.description if i.description else ''}{freq}"

    period = f"{plan.period.start or '?'} to {plan.period.end or 'open'}"
    return narrative.generated(
        narrative.heading(plan.title or "Treatment plan"),
        narrative.paragraph(f"Status: {plan.status}. Period: {period}."),
        narrative.section("Goals", [goal_line(g) for g in plan.goals]),
        narrative.section("Interventions", [intervention_line(i) for i in plan.interventions]),
        narrative.paragraph(f"Next review: {plan.review_date}") if plan.review_date else "",
    )


def careplan(plan: TreatmentPlan, ctx: MappingContext) -> Resource:
    activities: list[dict[str, Any]] = [
        {"reference": ctx.ref("ServiceRequest", *_intervention_key(plan, i))} for i in plan.interventions
    ]
    if plan.review_date:
        # R4 CarePlan has no review date; a scheduled activity keeps it structured and visible.
        activities.append(
            {
                "detail": {
                    "status": "scheduled" if plan.status == "active" else "not-started",
                    "description": "Treatment plan review",
                    "scheduledPeriod": {"start": fhir_date(plan.review_date)},
                    "performer": [ctx.practitioner_ref(plan.author)],
                }
            }
        )
    return drop_empty(
        {
            "resourceType": "CarePlan",
            "id": ctx.id("CarePlan", plan.id),
            "meta": meta(profiles.US_CORE_CAREPLAN),
            "text": _narrative(plan),
            "identifier": [ctx.record_identifier("treatment-plan", plan.id)],
            "status": plan.status,
            "intent": "plan",
            "category": [
                fhir.concept(systems.US_CORE_CAREPLAN_CATEGORY, "assess-plan", "Assessment and Plan of Treatment")
            ],
            "title": plan.title,
            "subject": ctx.ref("Patient", plan.client),
            "encounter": ctx.ref("Encounter", plan.visit) if plan.visit else None,
            "period": date_period(plan.period),
            "created": fhir_instant(plan.created_at),
            "author": ctx.practitioner_ref(plan.author),
            "addresses": [ctx.ref("Condition", dx) for dx in plan.problems],
            "goal": [ctx.ref("Goal", plan.id, g.id) for g in plan.goals],
            "activity": activities,
        }
    )


def to_fhir(plan: TreatmentPlan, ctx: MappingContext) -> list[Resource]:
    resources = [careplan(plan, ctx)]
    resources += [goal(plan, g, ctx) for g in plan.goals]
    resources += [activity_request(plan, i, ctx) for i in plan.interventions]
    if plan.signatures:
        resources.append(signature_provenance(plan, resources[0], ctx))
    return resources
