"""Invariants of scoring, for every instrument in the catalog (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.errors import ScoringError
from adapter.terminology.catalog import instrument, instruments
from adapter.terminology.models import Instrument
from adapter.terminology.scoring import Answer, score
from tests.terminology.strategies import filled, out_of_range

ALL = instruments()
SUMMED = tuple(i for i in ALL if i.scoring == "sum")
ids = [i.key for i in ALL]
summed_ids = [i.key for i in SUMMED]
PROPERTY = settings(max_examples=60, deadline=None)


@pytest.mark.parametrize("inst", SUMMED, ids=summed_ids)
@PROPERTY
@given(data=st.data())
def test_total_is_sum_of_ordinals_and_band_contains_it(inst: Instrument, data: st.DataObject) -> None:
    form = data.draw(filled(inst))
    result = score(inst, form.answers)
    expected = sum(form.chosen[i.key].value for i in inst.scored_items)
    assert result.total == expected
    assert result.missing == ()
    low, high = inst.total_range
    assert low <= expected <= high
    if inst.bands:
        assert result.band is not None and result.band.contains(expected)
    for answer in result.answers:
        assert answer.option == form.chosen[answer.item.key]
    # The stated total, when right, is accepted.
    assert score(inst, form.answers, stated_total=expected).total == expected


@pytest.mark.parametrize("inst", SUMMED, ids=summed_ids)
@PROPERTY
@given(data=st.data())
def test_any_missing_scored_item_means_no_total(inst: Instrument, data: st.DataObject) -> None:
    dropped = data.draw(st.sets(st.sampled_from([i.key for i in inst.scored_items]), min_size=1))
    kept = tuple(i for i in inst.items if i.key not in dropped)
    form = data.draw(filled(inst, kept))
    result = score(inst, form.answers)
    assert result.total is None
    assert result.band is None
    assert result.cutoffs_met == ()
    assert set(dropped) <= set(result.missing)
    assert not result.complete
    # A stated total cannot be checked against missing items: an error, never a silent pass.
    with pytest.raises(ScoringError, match="cannot be checked"):
        score(inst, form.answers, stated_total=data.draw(st.integers(0, 100)))


@pytest.mark.parametrize("inst", ALL, ids=ids)
@PROPERTY
@given(data=st.data())
def test_out_of_range_answer_is_an_error_never_clamped(inst: Instrument, data: st.DataObject) -> None:
    form = data.draw(filled(inst))
    item = data.draw(st.sampled_from(inst.items))
    bad = data.draw(out_of_range(item))
    answers = {k: v for k, v in form.answers.items() if inst.item(k.removeprefix("/")) is not item}
    answers[item.key] = bad
    with pytest.raises(ScoringError) as caught:
        score(inst, answers)
    assert f"item {item.key}" in str(caught.value)
    assert inst.key in str(caught.value)


@pytest.mark.parametrize("inst", SUMMED, ids=summed_ids)
@PROPERTY
@given(data=st.data())
def test_stated_total_that_disagrees_is_an_error(inst: Instrument, data: st.DataObject) -> None:
    form = data.draw(filled(inst))
    total = score(inst, form.answers).total
    assert total is not None
    wrong = data.draw(st.integers(-5, 100).filter(lambda v: v != total))
    with pytest.raises(ScoringError, match="does not match"):
        score(inst, form.answers, stated_total=wrong)


@PROPERTY
@given(data=st.data())
def test_phq9_item9_above_zero_always_fires_whatever_else(data: st.DataObject) -> None:
    phq9 = instrument("phq-9")
    others = tuple(i for i in phq9.items if i.key != "9")
    kept = tuple(data.draw(st.lists(st.sampled_from(others), unique=True)))
    form = data.draw(filled(phq9, kept))
    answers = dict(form.answers)
    item9: list[Answer] = [1, 2, 3, "LA6571-9"]
    answers[data.draw(st.sampled_from(["9", "44260-8"]))] = data.draw(st.sampled_from(item9))
    result = score(phq9, answers)
    assert "item-9-positive" in {r.key for r in result.risk_rules}
    assert all(r.severity in {"low", "moderate", "high"} for r in result.risk_rules)


@PROPERTY
@given(data=st.data())
def test_phq9_item9_zero_or_absent_never_fires_the_item9_rule(data: st.DataObject) -> None:
    phq9 = instrument("phq-9")
    others = tuple(i for i in phq9.items if i.key != "9")
    form = data.draw(filled(phq9, others))
    answers = dict(form.answers)
    if data.draw(st.booleans()):
        answers["9"] = 0
    assert "item-9-positive" not in {r.key for r in score(phq9, answers).risk_rules}


@PROPERTY
@given(data=st.data())
def test_phq2_never_yields_a_phq9_total(data: st.DataObject) -> None:
    phq2, phq9 = instrument("phq-2"), instrument("phq-9")
    result = score(phq2, data.draw(filled(phq2)).answers)
    assert result.total_coding is not None and phq9.total is not None
    assert result.total_coding.code == "55758-7"
    assert result.total_coding.code != phq9.total.code
    assert result.total is not None and 0 <= result.total <= 6


@pytest.mark.parametrize("inst", ALL, ids=ids)
@PROPERTY
@given(data=st.data())
def test_answer_forms_are_equivalent(inst: Instrument, data: st.DataObject) -> None:
    """Ordinal, LA code, yes/no and LOINC-keyed answers for the same options score the same."""
    first = data.draw(filled(inst))
    by_number = {key: opt.value for key, opt in first.chosen.items()}
    a, b = score(inst, first.answers), score(inst, by_number)
    assert (a.total, a.missing, a.band, a.risk_rules, a.risk_level) == (
        b.total,
        b.missing,
        b.band,
        b.risk_rules,
        b.risk_level,
    )


@pytest.mark.parametrize("inst", ALL, ids=ids)
@PROPERTY
@given(data=st.data())
def test_rules_fire_on_partial_forms_exactly_as_their_predicates_say(inst: Instrument, data: st.DataObject) -> None:
    kept = tuple(data.draw(st.lists(st.sampled_from(inst.items), unique=True)))
    form = data.draw(filled(inst, kept))
    result = score(inst, form.answers)
    if any(p.item is None for r in inst.risk_rules for p in r.when):
        # The oracle below reads totals from option values: true while no total-rule catalog reverse-scores an item.
        assert not any(i.reverse_scored for i in inst.items)
    # On an incomplete form a rule on the total holds only if it holds however the missing items are answered:
    # at the lowest and the highest total the form can still reach (predicates are monotone or equalities).
    scored = [i for i in inst.items if i.scored]
    low = sum(
        form.chosen[i.key].value if i.key in form.chosen else min(o.value for o in i.answers.options) for i in scored
    )
    high = sum(
        form.chosen[i.key].value if i.key in form.chosen else max(o.value for o in i.answers.options) for i in scored
    )
    for rule in inst.risk_rules:
        expected = all(
            (p.item in form.chosen and p.holds(form.chosen[p.item].value))
            if p.item is not None
            else (p.holds(result.total) if result.total is not None else p.holds(low) and p.holds(high))
            for p in rule.when
        )
        assert (rule in result.risk_rules) == expected


@PROPERTY
@given(data=st.data())
def test_dast10_item3_is_reverse_scored(data: st.DataObject) -> None:
    dast = instrument("dast-10")
    form = data.draw(filled(dast, tuple(i for i in dast.items if i.key != "3")))
    no, yes = dict(form.answers), dict(form.answers)
    no["3"], yes["3"] = False, True
    assert score(dast, no).total == score(dast, yes).total + 1  # type: ignore[operator]


@pytest.mark.parametrize("key", ["9", "10"])
@pytest.mark.parametrize("bad", [1, 3])
def test_audit_items_9_and_10_have_no_odd_ordinals(key: str, bad: int) -> None:
    with pytest.raises(ScoringError, match=f"item {key}"):
        score(instrument("audit"), {key: bad})
    assert score(instrument("audit"), {key: 4}).answer(key).value == 4  # type: ignore[union-attr]
