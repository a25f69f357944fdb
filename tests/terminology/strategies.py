"""Hypothesis strategies that fill in an instrument's form from its own catalog definition."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from adapter.terminology.models import AnswerOption, Instrument, Item
from adapter.terminology.scoring import Answer


@dataclass(frozen=True)
class Filled:
    answers: dict[str, Answer]  # as given to score(): keyed by item key or LOINC code, in any answer form
    chosen: dict[str, AnswerOption]  # item key -> the option that was meant


def answer_forms(option: AnswerOption) -> st.SearchStrategy[Answer]:
    """Every way a caller may give this option: its ordinal, its LA code, its yes/no."""
    forms: list[Answer] = [option.value]
    if option.code is not None:
        forms.append(option.code)
    if option.answer is not None:
        forms.append(option.answer)
    return st.sampled_from(forms)


def item_keys(item: Item) -> st.SearchStrategy[str]:
    """The keys that name this item: its number, its LOINC code, its LHC-Forms style linkId."""
    keys = [item.key] + ([item.code, f"/{item.code}"] if item.code else [])
    return st.sampled_from(keys)


@st.composite
def filled(draw: st.DrawFn, instrument: Instrument, items: tuple[Item, ...] | None = None) -> Filled:
    """Answers for `items` (default: every item), each in a randomly chosen but equivalent form. An item the form
    asks only after a given answer (enable_when) that was not given is answered with its lowest option ("no"):
    a yes there contradicts the form and is refused (tests/terminology/test_skip_logic.py)."""
    answers: dict[str, Answer] = {}
    chosen: dict[str, AnswerOption] = {}
    for item in instrument.items if items is None else items:
        gate = item.enable_when
        if gate is not None and not (gate.item in chosen and chosen[gate.item].value == gate.value):
            option = min(item.answers.options, key=lambda o: o.value)
        else:
            option = draw(st.sampled_from(item.answers.options))
        answers[draw(item_keys(item))] = draw(answer_forms(option))
        chosen[item.key] = option
    return Filled(answers, chosen)


def out_of_range(item: Item) -> st.SearchStrategy[int]:
    allowed = {o.value for o in item.answers.options}
    return st.integers(min_value=-50, max_value=50).filter(lambda v: v not in allowed)
