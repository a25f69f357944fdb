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
        ("completed", "rejected", False),  # an end state recorded by the clinic wins
        ("cancelled", "accepted", False),  # the clinic withdrew the referral
        ("entered-in-error", "completed", False),
        ("requested", "requested", False),
        ("requested", "cancelled", False),  # only the requester cancels
        ("requested", None, False),
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
