"""Treatment-plan resources: ids that never meet another record's, and plans entered in error."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from adapter.mappings.context import MappingContext
from tests.mappings.scenario import CLIENT, map_records, of_type

CREATED = "2026-01-01T10:00:00-05:00"


def _plan(plan_id: str, status: str = "active", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "treatment_plan",
        "id": plan_id,
        "client": CLIENT,
        "program": "prog-omh",
        "status": status,
        "period": {"start": "2026-01-01"},
        "created_at": CREATED,
        "author": "pr-castillo",
        **extra,
    }


def _referral(referral_id: str) -> dict[str, Any]:
    return {
        "kind": "referral",
        "id": referral_id,
        "client": CLIENT,
        "program": "prog-omh",
        "specialty": "psychiatry",
        "to_organization": "org-northfield-psych",
        "reasons": ["dx-1"],
        "requested_by": "pr-castillo",
        "authored_at": "2026-01-02T10:00:00-05:00",
    }


DIAGNOSIS = {
    "kind": "diagnosis",
    "id": "dx-1",
    "client": CLIENT,
    "program": "prog-omh",
    "code": "F33.1",
    "recorded_at": CREATED,
}
GOALS = [
    {
        "id": "g-1",
        "description": "PHQ-9 below 10",
        "measure": {"instrument": "phq-9", "comparator": "<", "value": 10},
        "due_date": "2026-04-01",
    },
    {"id": "g-2", "description": "Back at work", "status": "proposed"},
    {"id": "g-3", "description": "Sleep 7 hours", "status": "completed"},
]


def test_an_intervention_never_takes_the_id_of_a_referral(tmp_path: Path) -> None:
    """A plan named "referral" with an intervention named like a referral used to give both one id."""
    chart = map_records(
        tmp_path,
        [DIAGNOSIS, _plan("referral", interventions=[{"id": "ref-1", "modality": "cbt"}]), _referral("ref-1")],
    )
    requests = of_type(chart, "ServiceRequest")
    assert sorted(r["intent"] for r in requests) == ["order", "plan"]
    assert len({r["id"] for r in requests}) == 2
    assert len({e["fullUrl"] for e in chart.bundle["entry"]}) == len(chart.bundle["entry"])
    (careplan,) = of_type(chart, "CarePlan")
    (intervention,) = [r for r in requests if r["intent"] == "plan"]
    assert careplan["activity"][0]["reference"] == {"reference": f"ServiceRequest/{intervention['id']}"}
    (task,) = of_type(chart, "Task")
    (referral,) = [r for r in requests if r["intent"] == "order"]
    assert task["focus"] == {"reference": f"ServiceRequest/{referral['id']}"}


def test_no_two_id_keys_give_one_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ctx.id key space, fed record ids equal to the literal parts of the other key spaces: each resource id
    comes from exactly one key."""
    keys_of: dict[tuple[str, str], set[tuple[str, ...]]] = defaultdict(set)
    original = MappingContext.id

    def recording(self: MappingContext, resource_type: str, *key: str) -> str:
        made = original(self, resource_type, *key)
        keys_of[(resource_type, made)].add(key)
        return made

    monkeypatch.setattr(MappingContext, "id", recording)
    literal_ids = ["referral", "safety-plan", "program", "signatures", "batch", "treatment-plan-intervention"]
    records: list[dict[str, Any]] = [DIAGNOSIS, _referral("ref-1"), _referral("g-1")]
    for plan_id in literal_ids:
        records.append(
            _plan(
                plan_id,
                goals=[{"id": "ref-1", "description": "A goal"}],
                interventions=[{"id": i, "modality": "cbt"} for i in ["ref-1", "g-1", plan_id]],
                signatures=[{"role": "author", "signer": "pr-castillo", "signed_at": CREATED}],
            )
        )
    records.append(
        {
            "kind": "safety_plan",
            "id": "referral",
            "client": CLIENT,
            "program": "prog-omh",
            "created_at": CREATED,
            "author": "pr-castillo",
            "warning_signs": ["Not sleeping"],
        }
    )
    chart = map_records(tmp_path, records)
    present = [(r["resourceType"], r["id"]) for r in chart.resources]
    assert len(present) == len(set(present))
    assert {k: v for k, v in keys_of.items() if len(v) > 1} == {}


def test_the_goals_of_a_plan_entered_in_error_are_entered_in_error(tmp_path: Path) -> None:
    chart = map_records(
        tmp_path,
        [_plan("tp-1", "entered-in-error", goals=GOALS, interventions=[{"id": "i-1", "modality": "cbt"}])],
    )
    assert [c["status"] for c in of_type(chart, "CarePlan")] == ["entered-in-error"]
    assert [s["status"] for s in of_type(chart, "ServiceRequest")] == ["entered-in-error"]
    assert [g["lifecycleStatus"] for g in of_type(chart, "Goal")] == ["entered-in-error"] * 3


def test_the_goals_of_other_plans_keep_their_own_status(tmp_path: Path) -> None:
    chart = map_records(tmp_path, [_plan("tp-1", "revoked", goals=GOALS)])
    assert [g["lifecycleStatus"] for g in of_type(chart, "Goal")] == ["active", "proposed", "completed"]
