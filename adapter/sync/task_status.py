"""Who owns a Task's status, and what a partner's Task status means for the clinic's referral.

The FHIR R4 Task state machine (http://hl7.org/fhir/R4/task.html#statemachine, codes in
http://hl7.org/fhir/task-status): the requester (the clinic) drafts, requests or withdraws a Task; the owner (the
partner that performs the referral) moves it forward: received, accepted, ready, in-progress, on-hold, and ends it.
``completed``, ``rejected``, ``failed``, ``cancelled`` and ``entered-in-error`` are final: a Task in one of them
does not change state again.

On re-push (:func:`keep_partner_status`): a changed referral must not overwrite the partner's answer with the
clinic's view of it. A partner's final state always stands (the clinic's cancel does not undo a completion); the
clinic's withdrawal (cancelled, entered-in-error) wins over a Task that is still open; among the open states the
one further along stands, and ``on-hold`` (set by the owner to pause work in progress) is further along than
``in-progress``.

On pull (:data:`TASK_TO_REFERRAL`): a partner's Task status becomes the closest referral status of the clinic's
record model (docs/records.md: draft, sent, accepted, declined, in-progress, completed, cancelled). ``failed`` and
``entered-in-error`` have no correct counterpart there (``declined`` means the recipient refused; a failed
referral was accepted and then could not be carried out): the referral is left unchanged and the pull reports it
for review (:data:`NEEDS_REVIEW`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from adapter.fhir import Resource
from adapter.schema.definitions import elements

# Final states of the R4 Task state machine: no transition leaves them.
FINAL = frozenset({"completed", "rejected", "failed", "cancelled", "entered-in-error"})
# Set by the requester (the clinic): the referral is drafted, sent, withdrawn or a mistake.
CLINIC_INITIAL = frozenset({"draft", "requested"})
CLINIC_FINAL = frozenset({"cancelled", "entered-in-error"})
# Set by the owner (the partner) as it works the referral; the last three end it.
PARTNER_PROGRESS = frozenset({"received", "accepted", "ready", "in-progress", "on-hold"})
PARTNER_FINAL = frozenset({"rejected", "completed", "failed"})
# The elements the owner writes when it moves the Task.
PARTNER_ELEMENTS = ("status", "statusReason", "businessStatus", "output")

# How far an open Task has come. on-hold is entered only from in-progress (the owner pauses the work), so a
# clinic that still says in-progress has not seen the pause: the owner's on-hold stands.
_RANK = {"draft": 0, "requested": 1, "received": 2, "accepted": 3, "ready": 4, "in-progress": 5, "on-hold": 6}

# FHIR R4 Task.status -> the clinic's referral status (records/referral.py). BSeR (http://hl7.org/fhir/us/bser)
# uses these statuses for the recipient's answer to a referral. Absent: not an answer (draft), or no referral
# status fits (NEEDS_REVIEW).
TASK_TO_REFERRAL = {
    "requested": "sent",
    "received": "sent",  # claimed, still being evaluated: not yet accepted
    "accepted": "accepted",
    "ready": "accepted",  # accepted, work not started yet
    "rejected": "declined",
    "cancelled": "cancelled",
    "in-progress": "in-progress",
    "on-hold": "in-progress",  # work started and paused: still in progress, not merely accepted
    "completed": "completed",
}
# Partner statuses the referral model has no place for: the referral is left as it is and the pull reports the
# Task for a person to look at (what each means, from the task-status code system).
NEEDS_REVIEW = {
    "failed": "the partner attempted the referral but could not complete it",
    "entered-in-error": "the partner marked its Task as entered in error",
}


def partners_answer_stands(ours: str | None, theirs: str | None) -> bool:
    """True when the partner's status must be kept over ours."""
    if theirs is None or ours == theirs:
        return False
    if theirs in FINAL:
        return True  # a final state is final, whoever reached it: a re-push must not reopen or re-end it
    if ours in CLINIC_FINAL:
        return False  # the requester withdraws a Task that is still open
    if theirs in PARTNER_PROGRESS:
        return _RANK.get(ours or "", 0) < _RANK[theirs]
    return False


def keep_partner_status(ours: Resource, theirs: Mapping[str, Any] | None) -> Resource:
    """`ours` with the partner's status elements when the partner's answer stands (a new dict; `ours` is
    shared and never edited); `ours` itself otherwise."""
    status = theirs.get("status") if theirs is not None else None
    if theirs is None or not isinstance(status, str) or not partners_answer_stands(ours.get("status"), status):
        return ours  # a partner copy without a readable status has no answer to keep
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
