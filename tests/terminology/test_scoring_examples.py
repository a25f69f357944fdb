"""Scoring, pinned on hand-checked examples: C-SSRS triage, cut-offs, and what errors say (and do not say)."""

from __future__ import annotations

from typing import Any

import pytest

from adapter.errors import ScoringError, TerminologyError
from adapter.terminology.catalog import instrument
from adapter.terminology.scoring import Answer, score

PHQ9_ALL_ONES: dict[str, Answer] = {str(n): 1 for n in range(1, 10)}


def test_phq9_worked_example_with_codings() -> None:
    answers: dict[str, Answer] = {k: v for k, v in PHQ9_ALL_ONES.items() if k != "2"}
    answers |= {"1": "LA6571-9", "44255-8": 2, "10": "LA6573-5"}
    result = score(instrument("PHQ9"), answers, stated_total=12)
    assert result.total == 12
    assert result.band is not None and result.band.code == "LA6710-3"
    assert result.band.coding.fhir_coding() == {
        "system": "http://loinc.org",
        "code": "LA6710-3",
        "display": "10-14 = Moderate depression",
    }
    assert [a.item.key for a in result.answers] == [str(n) for n in range(1, 11)]
    assert result.answer("1").coding.code == "LA6571-9"  # type: ignore[union-attr]
    assert result.total_coding is not None and result.total_coding.code == "44261-6"
    assert {r.key for r in result.risk_rules} == {"item-9-positive"}
    assert [c.key for c in result.cutoffs_met] == ["positive"]


def test_total_quantity_is_ucum_score() -> None:
    result = score(instrument("gad-7"), {str(n): 2 for n in range(1, 8)})
    assert result.total_quantity() == {
        "value": 14,
        "unit": "{score}",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert score(instrument("gad-7"), {"1": 2}).total_quantity() is None


def test_integer_item_numbers_are_accepted() -> None:
    answers: dict[Any, Answer] = {1: 1, 2: 2}
    assert score(instrument("phq-2"), answers).total == 3


def test_phq9_item_10_is_not_scored_nor_required() -> None:
    result = score(instrument("phq-9"), {**PHQ9_ALL_ONES, "10": 3})
    assert result.total == 9
    assert score(instrument("phq-9"), PHQ9_ALL_ONES).missing == ()


def test_phq9_severe_band_rule() -> None:
    result = score(instrument("phq-9"), {str(n): 3 for n in range(1, 10)})
    assert result.total == 27
    assert {r.key for r in result.risk_rules} == {"item-9-positive", "severe-band"}


def test_none_answers_count_as_missing() -> None:
    result = score(instrument("gad-7"), {"1": 1, "2": None})
    assert result.total is None
    assert "2" in result.missing


@pytest.mark.parametrize(
    ("answers", "level", "missing"),
    [
        ({"1": False, "2": False, "6": False}, "none", ()),
        ({"1": True, "2": False, "6": False}, "low", ()),
        ({"1": True, "2": True, "3": False, "4": False, "5": False, "6": False}, "low", ()),
        ({"1": True, "2": True, "3": True, "4": False, "5": False, "6": False}, "moderate", ()),
        ({"1": True, "2": True, "3": True, "4": True, "5": False, "6": False}, "high", ()),
        ({"1": True, "2": True, "3": False, "4": False, "5": True, "6": False}, "high", ()),
        ({"1": False, "2": False, "6": True, "6b": False}, "moderate", ()),
        ({"1": False, "2": False, "6": True, "6b": True}, "high", ()),
        # Undecidable: a yes to item 2 with 3-5 unanswered could still be high.
        ({"1": True, "2": True, "6": False}, None, ("3", "4", "5")),
        # ... unless a top-level rule already fired.
        ({"1": True, "2": True, "4": True, "6": False}, "high", ("3", "5")),
        # Behavior reported, recency unknown: at least moderate, but not decidable.
        ({"1": False, "2": False, "6": True}, None, ("6b",)),
        # Nothing answered: no level, never "none".
        ({}, None, ("1", "2", "6")),
    ],
)
def test_cssrs_triage(answers: dict[str, Answer], level: str | None, missing: tuple[str, ...]) -> None:
    result = score(instrument("C-SSRS"), answers)
    assert (result.risk_level.key if result.risk_level else None) == level
    assert result.missing == missing
    assert result.total is None and result.total_coding is None


def test_cssrs_has_no_total_to_state() -> None:
    with pytest.raises(ScoringError, match="no total"):
        score(instrument("c-ssrs-screener"), {"1": False, "2": False, "6": False}, stated_total=0)


def test_cssrs_risk_level_codings() -> None:
    inst = instrument("cssrs")
    assert inst.risk_level is not None and inst.risk_level.code == "93374-7"
    low = score(inst, {"1": True, "2": False, "6": False}).risk_level
    assert low is not None and low.coding.fhir_coding() == {
        "system": "http://loinc.org",
        "code": "LA9194-7",
        "display": "Low risk",
    }
    high = score(inst, {"1": True, "2": True, "5": True}).risk_level
    assert high is not None and high.coding.fhir_coding() is None  # text only: no LOINC answer code found
    assert high.coding.fhir_concept() == {"text": "High risk"}


@pytest.mark.parametrize(
    ("sex", "total", "met", "not_applied"),
    [
        (None, 4, [], ["positive-men", "positive-women"]),
        ("male", 3, [], []),
        ("male", 4, ["positive-men"], []),
        ("female", 3, ["positive-women"], []),
        ("female", 2, [], []),
    ],
)
def test_audit_c_cutoff_needs_sex(sex: Any, total: int, met: list[str], not_applied: list[str]) -> None:
    answers: dict[str, Answer] = {"1": min(total, 4), "2": max(total - 4, 0), "3": 0}
    result = score(instrument("audit-c"), answers, sex=sex)
    assert result.total == total
    assert [c.key for c in result.cutoffs_met] == met
    assert [c.key for c in result.cutoffs_not_applied] == not_applied


def test_errors_name_instrument_and_item_but_not_the_answer() -> None:
    with pytest.raises(ScoringError) as caught:
        score(instrument("phq-9"), {"3": 987654})
    text = str(caught.value) + " ".join(caught.value.lines())
    assert "phq-9 item 3" in text and "987654" not in text
    assert caught.value.problems[0].field == "answers.3"

    with pytest.raises(ScoringError) as caught:
        score(instrument("phq-9"), {"3": "LA99999-9"})
    assert "LA99999-9" not in str(caught.value) + " ".join(caught.value.lines())

    with pytest.raises(ScoringError) as caught:
        score(instrument("phq-9"), {**PHQ9_ALL_ONES}, stated_total=424242)
    assert "424242" not in str(caught.value)


def test_every_bad_answer_is_reported_at_once() -> None:
    with pytest.raises(ScoringError) as caught:
        score(instrument("gad-7"), {"1": 9, "2": True, "99": 1})
    fields = [p.field for p in caught.value.problems]
    assert fields == ["answers.1", "answers.2", "answers"]
    assert "3 problems" in str(caught.value)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"11": 1}, "no item '11'"),
        ({"12345-6": 1}, "no item '12345-6'"),
        ({"free text <script>": 1}, "no item an unrecognised key"),
        ({"1": 1, "44250-9": 1}, "answered twice"),
        ({"1": True}, "not yes/no"),
        ({"1": 1.0}, "must be an ordinal"),
        ({"1": "1"}, "not one of the item's codes"),
    ],
)
def test_bad_answers(answers: dict[str, Any], message: str) -> None:
    with pytest.raises(ScoringError, match=message):
        score(instrument("phq-9"), answers)


def test_stated_total_must_be_a_number() -> None:
    with pytest.raises(ScoringError, match="whole number"):
        score(instrument("phq-2"), {"1": 1, "2": 1}, stated_total=True)


def test_pcl5_answers_without_loinc_codes_go_out_as_text() -> None:
    result = score(instrument("pcl-5"), {str(n): 2 for n in range(1, 21)})
    assert result.total == 40
    assert [c.key for c in result.cutoffs_met] == ["probable-ptsd"]
    first = result.answer("1")
    assert first is not None and first.coding.fhir_concept() == {"text": "Moderately"}


def test_scoring_error_is_a_terminology_error_with_its_own_issue_code() -> None:
    with pytest.raises(TerminologyError) as caught:
        score(instrument("dast-10"), {"1": 2})
    assert caught.value.operation_outcome()["issue"][0]["code"] == "business-rule"
