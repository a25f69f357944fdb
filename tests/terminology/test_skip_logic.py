"""Items the form did not ask (R4 Questionnaire.item.enableWhen) cannot carry a positive answer: the C-SSRS
screener's risk level is never computed from answers that contradict its own question order."""

from __future__ import annotations

import pytest

from adapter.errors import ScoringError
from adapter.terminology.catalog import instrument
from adapter.terminology.scoring import score

CSSRS = instrument("c-ssrs-screener")
NO_BEHAVIOUR = {"1": True, "2": True, "3": False, "4": False, "5": False, "6": False}


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({**NO_BEHAVIOUR, "6b": True}, "item 6b: answered, but it is asked only when item 6 is Yes"),
        (
            {"1": True, "2": False, "3": True, "4": False, "5": False, "6": False},
            "item 3: answered, but it is asked only when item 2 is Yes",
        ),
        ({"1": True, "2": True, "3": False, "4": False, "5": False, "6b": True}, "item 6b: answered, but item 6"),
    ],
)
def test_a_yes_to_an_item_the_form_did_not_ask_is_refused(answers: dict[str, bool], problem: str) -> None:
    with pytest.raises(ScoringError) as caught:
        score(CSSRS, answers)
    assert [p.field for p in caught.value.problems] == [f"answers.{problem.split(':')[0].split()[-1]}"]
    assert problem in caught.value.problems[0].message


def test_a_no_to_an_item_the_form_did_not_ask_is_accepted() -> None:
    every_box = {"1": True, "2": False, "3": False, "4": False, "5": False, "6": False, "6b": False}
    assert score(CSSRS, every_box).risk_level is not None


def test_an_asked_item_answered_yes_still_scores_high() -> None:
    result = score(CSSRS, {**NO_BEHAVIOUR, "6": True, "6b": True})
    assert result.risk_level is not None and result.risk_level.key == "high"
