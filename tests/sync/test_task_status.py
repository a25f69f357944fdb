"""Who owns a Task's status on re-push (adapter/sync/task_status.py)."""

from __future__ import annotations

import pytest

from adapter.schema import validator
from adapter.sync.task_status import keep_partner_status, partners_answer_stands

OURS = {
    "resourceType": "Task",
    "id": "t1",
    "status": "requested",
    "businessStatus": {"text": "sent"},
    "intent": "order",
    "priority": "asap",
    "for": {"reference": "Patient/p1"},
}


@pytest.mark.parametrize(
    ("ours", "theirs", "stands"),
    [
        ("requested", "accepted", True),
        ("requested", "rejected", True),
        ("requested", "completed", True),
        ("draft", "received", True),
        ("accepted", "in-progress", True),
        ("accepted", "completed", True),
        ("in-progress", "accepted", False),  # the clinic's record is further along
        ("cancelled", "accepted", False),  # the clinic withdraws a referral that is still open
        ("entered-in-error", "in-progress", False),
        ("requested", "requested", False),
        ("requested", None, False),
        # Final states are final (R4 Task state machine): no re-push reopens or replaces them.
        ("cancelled", "completed", True),
        ("completed", "rejected", True),
        ("entered-in-error", "completed", True),
        ("requested", "cancelled", True),
        ("in-progress", "failed", True),
        ("completed", "entered-in-error", True),
        # on-hold is the owner pausing work in progress: the clinic's in-progress has not seen it.
        ("in-progress", "on-hold", True),
        ("accepted", "on-hold", True),
        ("on-hold", "in-progress", False),
    ],
)
def test_who_owns_the_status(ours: str, theirs: str | None, stands: bool) -> None:
    assert partners_answer_stands(ours, theirs) is stands


def test_partners_answer_is_carried_into_ours_in_element_order() -> None:
    theirs = {
        **{k: v for k, v in OURS.items() if k != "businessStatus"},
        "meta": {"versionId": "3"},
        "status": "rejected",
        "statusReason": {"text": "no capacity"},
        "priority": "routine",
    }
    sent = keep_partner_status(OURS, theirs)
    assert sent is not OURS and OURS["status"] == "requested"  # ours is never edited
    assert sent["status"] == "rejected" and sent["statusReason"] == {"text": "no capacity"}
    assert sent["priority"] == "asap" and "meta" not in sent  # everything else is ours
    assert "businessStatus" not in sent  # the partner's status elements replace ours, absent ones included
    assert list(sent) == ["resourceType", "id", "status", "statusReason", "intent", "priority", "for"]
    validator.validate(sent)


def test_ours_is_sent_unchanged_when_the_partner_has_not_answered() -> None:
    assert keep_partner_status(OURS, {**OURS}) is OURS
    assert keep_partner_status(OURS, None) is OURS
    withdrawn = {**OURS, "status": "cancelled"}
    assert keep_partner_status(withdrawn, {**OURS, "status": "accepted"}) is withdrawn


def test_a_completed_referral_is_not_cancelled_by_a_re_push() -> None:
    theirs = {**OURS, "status": "completed", "businessStatus": {"text": "Seen 2026-03-06"}}
    ours = {**OURS, "status": "cancelled", "statusReason": {"text": "client moved"}}
    sent = keep_partner_status(ours, theirs)
    assert sent["status"] == "completed" and sent["businessStatus"] == {"text": "Seen 2026-03-06"}
    assert "statusReason" not in sent  # the partner's status elements, absent ones included
    validator.validate(sent)


def test_the_owners_pause_is_not_undone_by_a_re_push() -> None:
    theirs = {**OURS, "status": "on-hold", "statusReason": {"text": "waiting for records"}}
    sent = keep_partner_status({**OURS, "status": "in-progress"}, theirs)
    assert sent["status"] == "on-hold" and sent["statusReason"] == {"text": "waiting for records"}


def test_a_partner_copy_without_a_readable_status_keeps_ours() -> None:
    assert keep_partner_status(OURS, {**OURS, "status": {"code": "completed"}}) is OURS
