"""Who owns a Task's status: the partner that performs a referral moves it forward, the clinic only starts or
withdraws it (the FHIR R4 Task state machine, http://hl7.org/fhir/R4/task.html#statemachine).

A re-push of a changed referral must not overwrite the partner's answer (accepted, rejected with a reason,
completed) with the clinic's initial status: the partner's status fields are carried into what is sent. The
clinic's own moves (cancelled, entered-in-error) still win, as does anything the partner has not answered yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from adapter.fhir import Resource
from adapter.schema.definitions import elements

# Set by the requester (the clinic): the referral is drafted, sent, withdrawn or a mistake.
CLINIC_INITIAL = frozenset({"draft", "requested"})
CLINIC_FINAL = frozenset({"cancelled", "entered-in-error"})
# Set by the owner (the partner) as it works the referral; the last three end it.
PARTNER_PROGRESS = frozenset({"received", "accepted", "ready", "in-progress", "on-hold"})
PARTNER_FINAL = frozenset({"rejected", "completed", "failed"})
# The elements the owner writes when it moves the Task.
PARTNER_ELEMENTS = ("status", "statusReason", "businessStatus", "output")

_RANK = {"draft": 0, "requested": 1, "received": 2, "accepted": 3, "ready": 4, "in-progress": 5, "on-hold": 5}


def partners_answer_stands(ours: str | None, theirs: str | None) -> bool:
    """True when the partner's status must be kept over ours."""
    if theirs is None or ours in CLINIC_FINAL or ours == theirs:
        return False
    if theirs in PARTNER_FINAL:
        return ours not in PARTNER_FINAL  # the clinic's record of an end state wins over another end state
    if theirs in PARTNER_PROGRESS:
        return _RANK.get(ours or "", 0) < _RANK[theirs]
    return False


def keep_partner_status(ours: Resource, theirs: Mapping[str, Any] | None) -> Resource:
    """`ours` with the partner's status elements when the partner's answer stands (a new dict; `ours` is
    shared and never edited); `ours` itself otherwise."""
    if theirs is None or not partners_answer_stands(ours.get("status"), theirs.get("status")):
        return ours
    merged = {k: v for k, v in ours.items() if k not in PARTNER_ELEMENTS}
    for element in PARTNER_ELEMENTS:
        if element in theirs:
            merged[element] = theirs[element]
    order = _task_order()
    return dict(sorted(merged.items(), key=lambda kv: order.get(kv[0], len(order))))


@cache
def _task_order() -> dict[str, int]:
    """Task's elements in the specification's order (resourceType first)."""
    return {"resourceType": -1} | {e.name: n for n, e in enumerate(elements("Task"))}
