"""A rule on the total fires on an incomplete form when the answered items already make it certain; the form still
reports no total. C-SSRS already reported risk that missing items cannot change; PHQ-9 and GAD-7 now do too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.terminology.catalog import instrument, instruments
from adapter.terminology.models import Instrument
from adapter.terminology.scoring import score
from tests.mappings.scenario import CLIENT, map_records, of_type
from tests.terminology.strategies import filled


def _assessment(inst: str, answers: dict[str, int]) -> dict[str, Any]:
    return {
        "kind": "assessment",
        "id": "asm-1",
        "client": CLIENT,
        "program": "prog-omh",
        "instrument": inst,
        "administered_at": "2026-01-05T10:00:00-05:00",
        "administered_by": "pr-castillo",
        "answers": answers,
    }


# Item 3 missing; the others already sum to the severe band's lower bound (PHQ-9 20, GAD-7 15).
PHQ9_SEVERE_WITHOUT_ITEM_3 = {"1": 3, "2": 3, "4": 3, "5": 3, "6": 3, "7": 3, "8": 2, "9": 0}
GAD7_SEVERE_WITHOUT_ITEM_3 = {"1": 3, "2": 3, "4": 3, "5": 3, "6": 3, "7": 0}


@pytest.mark.parametrize(
    ("inst", "answers"), [("phq-9", PHQ9_SEVERE_WITHOUT_ITEM_3), ("gad-7", GAD7_SEVERE_WITHOUT_ITEM_3)]
)
def test_a_certain_severe_band_raises_its_flag_without_a_total(
    tmp_path: Path, inst: str, answers: dict[str, int]
) -> None:
    result = score(instrument(inst), answers)
    assert result.missing == ("3",)
    assert (result.total, result.band) == (None, None)  # never a total made up from the answered items
    assert [r.key for r in result.risk_rules] == ["severe-band"]

    chart = map_records(tmp_path, [_assessment(inst, answers)])
    (flag,) = of_type(chart, "Flag")
    assert flag["code"]["text"] == result.risk_rules[0].display  # "... total 20 or more": a bound, not a total
    priority = [e for e in flag["extension"] if "valueCodeableConcept" in e]
    assert [e["valueCodeableConcept"]["coding"][0]["code"] for e in priority] == ["PH"]  # high priority
    observations = of_type(chart, "Observation")
    assert not [o for o in observations if "valueQuantity" in o]  # no total Observation
    (panel,) = [o for o in observations if "hasMember" in o]
    assert "no total score is reported" in panel["note"][0]["text"]
    # flag-detail: the evidence is the answered items (there is no total to point at).
    details = [e["valueReference"]["reference"] for e in flag["extension"] if "valueReference" in e]
    assert details == [m["reference"] for m in panel["hasMember"]] and len(details) == len(answers)


@pytest.mark.parametrize(
    ("inst", "answers"),
    [
        ("phq-9", {**PHQ9_SEVERE_WITHOUT_ITEM_3, "8": 1}),  # 19 answered: item 3 decides
        ("gad-7", {**GAD7_SEVERE_WITHOUT_ITEM_3, "5": 2}),  # 14 answered: item 3 decides
    ],
)
def test_an_uncertain_severe_band_raises_nothing(tmp_path: Path, inst: str, answers: dict[str, int]) -> None:
    result = score(instrument(inst), answers)
    assert result.total is None and result.risk_rules == ()
    assert of_type(map_records(tmp_path, [_assessment(inst, answers)]), "Flag") == []


def test_a_complete_form_still_fires_on_its_total() -> None:
    assert [r.key for r in score(instrument("phq-9"), {**PHQ9_SEVERE_WITHOUT_ITEM_3, "3": 0}).risk_rules] == [
        "severe-band"
    ]
    assert score(instrument("phq-9"), {**PHQ9_SEVERE_WITHOUT_ITEM_3, "8": 1, "3": 0}).risk_rules == ()


TOTAL_RULED = tuple(i for i in instruments() if any(p.total for r in i.risk_rules for p in r.when))


@pytest.mark.parametrize("inst", TOTAL_RULED, ids=[i.key for i in TOTAL_RULED])
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_an_incomplete_form_fires_a_rule_on_the_total_exactly_when_every_completion_does(
    inst: Instrument, data: st.DataObject
) -> None:
    """Checked against the complete-form path: the lowest and the highest way of answering the missing items."""
    dropped = data.draw(st.sets(st.sampled_from([i.key for i in inst.scored_items]), min_size=1))
    form = data.draw(filled(inst, tuple(i for i in inst.items if i.key not in dropped)))
    incomplete = score(inst, form.answers)
    assert incomplete.total is None
    missing = [i for i in inst.scored_items if i.key in dropped]
    lowest = score(inst, {**form.answers, **{i.key: i.answers.min_value for i in missing}})
    highest = score(inst, {**form.answers, **{i.key: i.answers.max_value for i in missing}})
    completions = [lowest, highest]
    for rule in (r for r in inst.risk_rules if any(p.total for p in r.when)):
        every = all(rule in c.risk_rules for c in completions)
        assert (rule in incomplete.risk_rules) == every
