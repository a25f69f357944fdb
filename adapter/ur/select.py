"""Minimum necessary (pure): which of a client's resources a utilization review needs, and why the rest stays.

The selection is made BEFORE the consent release point, which then decides what of the selection the payer may
see. Directory entries (organizations, practitioners) are always offered: the labeler needs them to know which
program produced a record, and redaction releases only those a released resource references.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adapter.consent.labeler import ResourceLabels
from adapter.terminology.systems import LOINC
from adapter.ur.catalog import UrRequest, catalog

DIRECTORY_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole", "Location"})
TREATMENT_PLAN_SID = "/sid/treatment-plan"
ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
NOT_A_DIAGNOSIS = frozenset({"entered-in-error", "refuted"})

# Why a resource is left out, in words a compliance reader understands (no PHI).
REASONS: Mapping[str, str] = {
    "MN-NOTES": "clinical notes (progress, psychotherapy, counseling) are not needed for the review",
    "MN-CONSENT": "consents are not evidence (a Part 2 consent relied on travels as the copy 42 CFR 2.32 needs)",
    "MN-SAFETY": "risk flags and safety-plan details are not sent: the C-SSRS risk level carries the risk",
    "MN-ITEM-LEVEL": "item-level answers and panels are not needed: the total scores carry the result",
    "MN-NOT-RELEVANT": "not relevant to the requested level of care",
    "MN-OUTSIDE-WINDOW": "scored outside the look-back window before the request",
    "MN-INACTIVE": "not active (diagnosis resolved or in remission, plan not active)",
    "MN-NOT-IN-PLAN": "not part of an active treatment plan",
    "MN-NOT-NEEDED": "not needed for the review (visits, medications, referrals, provenance, contacts)",
    "MN-ENTERED-IN-ERROR": "entered in error: withdrawn by the clinic, not to be relied on",
}

# Elements whose value entered-in-error withdraws a record (R4: "This instance should not have been part of this
# patient's medical record").
_STATUS_ELEMENTS = ("status", "lifecycleStatus")


@dataclass(frozen=True)
class Excluded:
    resource: str  # "Type/id"
    rule: str  # a key of REASONS, or a consent rule id
    reason: str


@dataclass(frozen=True)
class Selection:
    keys: tuple[str, ...]  # in Bundle order
    excluded: tuple[Excluded, ...]


def _key(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _code(concept: Any) -> str | None:
    for coding in (concept or {}).get("coding") or ():
        if coding.get("system") == LOINC:
            return str(coding.get("code"))
    return None


def _status(concept: Any) -> str | None:
    codings = (concept or {}).get("coding") or ()
    return str(codings[0].get("code")) if codings else None


def effective(resource: Mapping[str, Any]) -> datetime | None:
    text = resource.get("effectiveDateTime")
    if not isinstance(text, str) or "T" not in text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _is_treatment_plan(resource: Mapping[str, Any]) -> bool:
    return any(str(i.get("system", "")).endswith(TREATMENT_PLAN_SID) for i in resource.get("identifier") or ())


def _plans(resources: Sequence[Mapping[str, Any]], labels: Mapping[str, ResourceLabels], sud: bool) -> set[str]:
    """Active treatment plans; a substance-use plan only for a substance-use level of care."""
    return {
        _key(r)
        for r in resources
        if r.get("resourceType") == "CarePlan"
        and _is_treatment_plan(r)
        and r.get("status") == "active"
        and (sud or "SUD" not in labels.get(_key(r), ResourceLabels(_key(r))).sensitivity)
    }


def _plan_members(resources: Sequence[Mapping[str, Any]], plans: set[str]) -> set[str]:
    """Goals and interventions (ServiceRequests) of the chosen plans."""
    members: set[str] = set()
    for resource in resources:
        if _key(resource) not in plans:
            continue
        members |= {str(g.get("reference")) for g in resource.get("goal") or ()}
        members |= {
            str((a.get("reference") or {}).get("reference"))
            for a in resource.get("activity") or ()
            if (a.get("reference") or {}).get("reference")
        }
    return members


def select(
    resources: Sequence[Mapping[str, Any]], labels: Mapping[str, ResourceLabels], request: UrRequest
) -> Selection:
    """The minimum-necessary selection for `request` from a client's mapped resources (in Bundle order)."""
    level = request.level
    sud = level.kind == "sud"
    wanted = {i.code for i in catalog().instruments_for(level.kind)}
    known = {i.code for i in catalog().instruments}
    since = request.instant - timedelta(days=catalog().lookback_days)
    plans = _plans(resources, labels, sud)
    members = _plan_members(resources, plans)
    keys: list[str] = []
    excluded: list[Excluded] = []

    def rule_for(resource: Mapping[str, Any]) -> str | None:
        rtype, key = resource.get("resourceType"), _key(resource)
        if rtype == "Patient" or rtype in DIRECTORY_TYPES:
            return None
        if any(resource.get(name) == "entered-in-error" for name in _STATUS_ELEMENTS):
            return "MN-ENTERED-IN-ERROR"
        if rtype == "Condition":
            active = _status(resource.get("clinicalStatus")) in ACTIVE_CLINICAL
            real = _status(resource.get("verificationStatus")) not in NOT_A_DIAGNOSIS
            return None if active and real else "MN-INACTIVE"
        if rtype == "Observation":
            code = _code(resource.get("code"))
            if code not in known or "hasMember" in resource:
                return "MN-ITEM-LEVEL" if "derivedFrom" in resource or "hasMember" in resource else "MN-NOT-NEEDED"
            if code not in wanted:
                return "MN-NOT-RELEVANT"
            when = effective(resource)
            return None if when is not None and since <= when <= request.instant else "MN-OUTSIDE-WINDOW"
        if rtype == "CarePlan":
            if key in plans:
                return None
            return "MN-SAFETY" if not _is_treatment_plan(resource) else "MN-INACTIVE"
        if rtype in ("Goal", "ServiceRequest"):
            return None if key in members else "MN-NOT-IN-PLAN"
        return {
            "DocumentReference": "MN-NOTES",
            "Consent": "MN-CONSENT",
            "Flag": "MN-SAFETY",
            "QuestionnaireResponse": "MN-ITEM-LEVEL",
        }.get(str(rtype), "MN-NOT-NEEDED")

    for resource in resources:
        rule = rule_for(resource)
        if rule is None:
            keys.append(_key(resource))
        else:
            excluded.append(Excluded(_key(resource), rule, REASONS[rule]))
    return Selection(tuple(keys), tuple(excluded))
