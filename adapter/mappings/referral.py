"""Referral -> US Core ServiceRequest (the clinic's order) + Task (the workflow the recipient updates).

Status lives on the Task (BSeR / Gravity pattern): the recipient accepts, declines or completes it. The
ServiceRequest changes status only when the clinic itself withdraws or completes its order.
"""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.errors import InputError
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.codes import specialty_concept
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import drop_empty, meta
from adapter.records import Referral
from adapter.terminology import systems

# Internal referral status -> (ServiceRequest.status, Task.status, BSeR businessStatus code, display).
# BSeR TaskBusinessStatusCS codes and displays per HL7/bser input/fsh/codesystems/TaskBusinessStatusCS.fsh (V).
_STATUS: dict[str, tuple[str, str, str | None, str | None]] = {
    "draft": ("draft", "draft", None, None),
    "sent": ("active", "requested", "2.0", "Service Request Created"),
    "accepted": ("active", "accepted", "3.0", "Service Request Accepted"),
    "declined": ("active", "rejected", "4.0", "Service Request Declined"),
    "in-progress": ("active", "in-progress", None, None),  # BSeR has no code for "started" short of scheduled
    "completed": ("completed", "completed", "7.0", "Service Request Fulfillment Completed"),
    "cancelled": ("revoked", "cancelled", "6.0", "Service Request Fulfillment Cancelled"),
}
# SNOMED CT 3457005 "Patient referral" as the referral category (BSeR ReferralServiceRequest examples).
_REFERRAL_CATEGORY = fhir.concept(systems.SNOMED, "3457005", "Patient referral")


def _recipient(ref: Referral, ctx: MappingContext) -> dict[str, Any]:
    if ref.to_practitioner:
        return ctx.practitioner_ref(ref.to_practitioner)
    if ref.to_organization:
        return ctx.organization_ref(ref.to_organization)
    raise InputError("a referral names no recipient")  # the record model requires one


def service_request(ref: Referral, ctx: MappingContext) -> Resource:
    sr_status = _STATUS[ref.status][0]
    performers = []
    if ref.to_organization:
        performers.append(ctx.organization_ref(ref.to_organization))
    if ref.to_practitioner:
        performers.append(ctx.practitioner_ref(ref.to_practitioner))
    supporting = [ctx.ref("Observation", a, "panel") for a in ref.supporting_assessments]
    return drop_empty(
        {
            "resourceType": "ServiceRequest",
            "id": ctx.id("ServiceRequest", "referral", ref.id),
            "meta": meta(profiles.US_CORE_SERVICE_REQUEST),
            "identifier": [ctx.record_identifier("referral", ref.id)],
            "status": sr_status,
            "intent": "order",
            "category": [_REFERRAL_CATEGORY],
            "priority": ref.priority,
            "code": specialty_concept(ref.specialty),
            "subject": ctx.ref("Patient", ref.client),
            "encounter": ctx.ref("Encounter", ref.visit) if ref.visit else None,
            "authoredOn": fhir_instant(ref.authored_at),
            "requester": ctx.practitioner_ref(ref.requested_by),
            "performer": performers,
            "reasonCode": [{"text": ref.reason_text}] if ref.reason_text else [],
            "reasonReference": [ctx.ref("Condition", dx) for dx in ref.reasons],
            "supportingInfo": supporting,
        }
    )


def task(ref: Referral, ctx: MappingContext) -> Resource:
    _, task_status, business_code, business_display = _STATUS[ref.status]
    return drop_empty(
        {
            "resourceType": "Task",
            "id": ctx.id("Task", "referral", ref.id),
            "identifier": [ctx.record_identifier("referral-task", ref.id)],
            "basedOn": [ctx.ref("ServiceRequest", "referral", ref.id)],
            "status": task_status,
            "statusReason": (
                {"text": ref.status_reason} if ref.status_reason and task_status in ("rejected", "cancelled") else None
            ),
            "businessStatus": (
                fhir.concept(systems.BSER_TASK_BUSINESS_STATUS, business_code, business_display)
                if business_code
                else None
            ),
            "intent": "order",
            "priority": ref.priority,
            "code": fhir.concept(systems.TASK_CODE, "fulfill", "Fulfill the focal request"),
            "focus": ctx.ref("ServiceRequest", "referral", ref.id),
            "for": ctx.ref("Patient", ref.client),
            "encounter": ctx.ref("Encounter", ref.visit) if ref.visit else None,
            "authoredOn": fhir_instant(ref.authored_at),
            "lastModified": fhir_instant(ref.authored_at),
            "requester": ctx.clinic_ref(ref.program),
            "owner": _recipient(ref, ctx),
        }
    )


def to_fhir(ref: Referral, ctx: MappingContext) -> list[Resource]:
    return [service_request(ref, ctx), task(ref, ctx)]
