"""Typed, frozen view of the instrument catalog (the YAML files under ``instruments/``).

The models check the catalog's own consistency when it is loaded, so a typo in a data file fails at start-up
rather than while scoring a patient's form: LOINC check digits, LA code form, answer lists without duplicate
values or codes, severity bands that tile the score range, and rules that only name items that exist.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter.terminology import loinc, systems

Severity = Literal["low", "moderate", "high"]
Sex = Literal["male", "female"]


class Frozen(BaseModel):
    """Base of every catalog model: immutable, and unknown fields are errors (typos in data files)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Cited(Frozen):
    """An entry with its provenance: where it was read, and whether a primary source confirmed it."""

    source: str = Field(min_length=1)
    verified: bool = True
    note: str | None = None


class Coding(Frozen):
    """A code to emit. A coding without a system is text only (``{"text": display}`` on the wire)."""

    system: str | None = None
    code: str | None = None
    display: str

    @model_validator(mode="after")
    def _system_and_code_together(self) -> Coding:
        if (self.system is None) != (self.code is None):
            raise ValueError("system and code go together: give both or neither")
        if self.system == systems.LOINC and self.code is not None and not _is_loinc_id(self.code):
            raise ValueError(f"{self.code!r} is not a valid LOINC code (form or check digit)")
        return self

    def fhir_coding(self) -> dict[str, str] | None:
        """``{"system", "code", "display"}``, or None for a text-only entry."""
        if self.system is None or self.code is None:
            return None
        return {"system": self.system, "code": self.code, "display": self.display}

    def fhir_concept(self) -> dict[str, Any]:
        """A CodeableConcept: the coding when there is one, always the display as text."""
        coding = self.fhir_coding()
        return {"coding": [coding], "text": self.display} if coding else {"text": self.display}


def _is_loinc_id(code: str) -> bool:
    return loinc.is_loinc(code) or loinc.is_answer_code(code) or loinc.is_answer_list(code)


class LoincTerm(Cited):
    """A LOINC question, panel or score term."""

    code: str
    display: str

    @model_validator(mode="after")
    def _valid_loinc(self) -> LoincTerm:
        if not loinc.is_loinc(self.code):
            raise ValueError(f"{self.code!r} is not a valid LOINC code (form or check digit)")
        return self

    @cached_property
    def coding(self) -> Coding:
        return Coding(system=systems.LOINC, code=self.code, display=self.display)


class AnswerOption(Frozen):
    """One answer: the ordinal it scores, its LOINC answer code (LA) when LOINC has one, and its text."""

    value: int
    code: str | None = None
    display: str
    answer: bool | None = None  # yes/no lists only: the yes/no this option stands for

    @model_validator(mode="after")
    def _la_code(self) -> AnswerOption:
        if self.code is not None and not loinc.is_answer_code(self.code):
            raise ValueError(f"{self.code!r} is not a LOINC answer code (LA...-n)")
        return self

    @cached_property
    def coding(self) -> Coding:
        if self.code is None:
            return Coding(display=self.display)
        return Coding(system=systems.LOINC, code=self.code, display=self.display)


class AnswerList(Cited):
    id: str  # LOINC LL id when LOINC has the list, else a local name
    options: tuple[AnswerOption, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> AnswerList:
        values = [o.value for o in self.options]
        codes = [o.code for o in self.options if o.code is not None]
        if len(set(values)) != len(values):
            raise ValueError(f"answer list {self.id}: two options score the same value")
        if len(set(codes)) != len(codes):
            raise ValueError(f"answer list {self.id}: two options share an answer code")
        flags = [o.answer for o in self.options]
        if any(f is not None for f in flags) and sorted(map(str, flags)) != ["False", "True"]:
            raise ValueError(f"answer list {self.id}: a yes/no list has exactly one yes and one no option")
        return self

    @cached_property
    def is_yes_no(self) -> bool:
        return any(o.answer is not None for o in self.options)

    @cached_property
    def min_value(self) -> int:
        return min(o.value for o in self.options)

    @cached_property
    def max_value(self) -> int:
        return max(o.value for o in self.options)

    @cached_property
    def value_index(self) -> dict[int, AnswerOption]:
        return {o.value: o for o in self.options}

    @cached_property
    def code_index(self) -> dict[str, AnswerOption]:
        return {o.code: o for o in self.options if o.code is not None}

    def by_value(self, value: int) -> AnswerOption | None:
        return self.value_index.get(value)

    def by_code(self, code: str) -> AnswerOption | None:
        return self.code_index.get(code)

    def by_answer(self, answer: bool) -> AnswerOption | None:
        return next((o for o in self.options if o.answer is answer), None)


class EnableWhen(Frozen):
    """The item is asked only when item `item` was answered with ordinal `value` (C-SSRS skip logic)."""

    item: str
    value: int

    def item_answer_text(self, instrument: Instrument) -> str:
        """The gating answer as the form shows it ("Yes"), else its ordinal."""
        gate = instrument.item(self.item)
        option = gate.answers.value_index.get(self.value) if gate is not None else None
        return option.display if option is not None and option.display else str(self.value)


class Item(Cited):
    key: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")  # linkId / number on the form: "1", "6b"
    code: str | None = None  # LOINC question code; None where none was found
    text: str
    answers: AnswerList
    scored: bool = True  # part of the total
    required: bool | None = None  # must be answered for the result to be complete; defaults to `scored`
    reverse_scored: bool = False
    enable_when: EnableWhen | None = None

    @model_validator(mode="after")
    def _checks(self) -> Item:
        if self.code is not None and not loinc.is_loinc(self.code):
            raise ValueError(f"item {self.key}: {self.code!r} is not a valid LOINC code")
        if self.reverse_scored:
            no, yes = self.answers.by_answer(False), self.answers.by_answer(True)
            if no is None or yes is None or no.value <= yes.value:
                raise ValueError(f"item {self.key}: reverse scoring means 'No' scores above 'Yes'")
        return self

    @cached_property
    def is_required(self) -> bool:
        return self.scored if self.required is None else self.required

    @cached_property
    def coding(self) -> Coding:
        if self.code is None:
            return Coding(display=self.text)
        return Coding(system=systems.LOINC, code=self.code, display=self.text)


class Band(Cited):
    """A severity band of the total, inclusive at both ends."""

    key: str
    min: int
    max: int
    display: str
    system: str | None = None
    code: str | None = None

    @cached_property
    def coding(self) -> Coding:
        return Coding(system=self.system, code=self.code, display=self.display)

    def contains(self, total: int) -> bool:
        return self.min <= total <= self.max


class Cutoff(Cited):
    """A screening cut-off: total >= `min_total` is positive; `sex` limits it to one sex (AUDIT-C)."""

    key: str
    min_total: int
    display: str
    sex: Sex | None = None


class Predicate(Frozen):
    """One test of a risk rule on an item's ordinal or on the total."""

    item: str | None = None
    total: bool = False
    op: Literal["gt", "ge", "eq"]
    value: int

    @model_validator(mode="after")
    def _one_subject(self) -> Predicate:
        if (self.item is None) == (not self.total):
            raise ValueError("a predicate tests either one item or the total")
        return self

    def holds(self, observed: int) -> bool:
        if self.op == "gt":
            return observed > self.value
        if self.op == "ge":
            return observed >= self.value
        return observed == self.value


class RiskLevel(Cited):
    key: str
    rank: int  # 0 = no risk identified; higher = more urgent
    display: str
    system: str | None = None
    code: str | None = None

    @cached_property
    def coding(self) -> Coding:
        return Coding(system=self.system, code=self.code, display=self.display)


class RiskRule(Cited):
    """Fires when every predicate holds; fires on whatever items were answered (never waits for a total)."""

    key: str
    display: str
    severity: Severity
    when: tuple[Predicate, ...] = Field(min_length=1)
    system: str | None = None
    code: str | None = None
    risk_level: str | None = None  # key of the instrument's risk level this rule establishes

    @cached_property
    def coding(self) -> Coding:
        return Coding(system=self.system, code=self.code, display=self.display)


class Instrument(Cited):
    key: str
    aliases: tuple[str, ...] = ()
    name: str
    panel: LoincTerm
    total: LoincTerm | None = None  # None: no summed score (C-SSRS reports a risk level instead)
    unit: str = "{score}"  # UCUM, per LOINC's example units for the score terms
    scoring: Literal["sum", "none"]
    items: tuple[Item, ...] = Field(min_length=1)
    bands: tuple[Band, ...] = ()
    cutoffs: tuple[Cutoff, ...] = ()
    risk_rules: tuple[RiskRule, ...] = ()
    risk_level: LoincTerm | None = None
    risk_levels: tuple[RiskLevel, ...] = ()
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        _check_items(self)
        _check_scoring(self)
        _check_rules(self)
        return self

    @cached_property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.scored)

    @cached_property
    def gated_items(self) -> tuple[Item, ...]:
        """Items asked only after a given answer to an earlier item (enable_when: C-SSRS skip logic)."""
        return tuple(i for i in self.items if i.enable_when is not None)

    @cached_property
    def total_range(self) -> tuple[int, int]:
        """Lowest and highest possible total (sum of each scored item's lowest / highest ordinal)."""
        items = self.scored_items
        return sum(i.answers.min_value for i in items), sum(i.answers.max_value for i in items)

    @cached_property
    def item_index(self) -> dict[str, Item]:
        index = {i.code: i for i in self.items if i.code is not None}
        index.update({i.key: i for i in self.items})
        return index

    def item(self, key_or_code: str) -> Item | None:
        """The item with this key ("9") or LOINC question code ("44260-8")."""
        return self.item_index.get(key_or_code)

    def band_for(self, total: int) -> Band | None:
        return next((b for b in self.bands if b.contains(total)), None)


def _check_items(inst: Instrument) -> None:
    keys = [i.key for i in inst.items]
    codes = [i.code for i in inst.items if i.code is not None]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{inst.key}: duplicate item keys")
    if len(set(codes)) != len(codes) or set(keys) & set(codes):
        raise ValueError(f"{inst.key}: an item key or LOINC code names two items")
    seen: set[str] = set()
    for item in inst.items:
        gate = item.enable_when
        if gate is not None and gate.item not in seen:
            raise ValueError(f"{inst.key}: item {item.key} depends on {gate.item}, not an earlier item")
        seen.add(item.key)


def _check_scoring(inst: Instrument) -> None:
    if inst.scoring == "sum":
        if inst.total is None or not inst.scored_items:
            raise ValueError(f"{inst.key}: a summed instrument needs a total term and scored items")
    elif inst.total is not None or inst.scored_items or inst.bands or inst.cutoffs:
        raise ValueError(f"{inst.key}: an unscored instrument has no total, scored items, bands or cut-offs")
    if inst.bands:
        low, high = inst.total_range
        ordered = sorted(inst.bands, key=lambda b: b.min)
        if any(b.min > b.max for b in ordered):
            raise ValueError(f"{inst.key}: a band ends before it starts")
        if ordered[0].min != low or ordered[-1].max != high:
            raise ValueError(f"{inst.key}: bands must cover the whole score range {low}-{high}")
        for prev, nxt in itertools.pairwise(ordered):
            if nxt.min != prev.max + 1:
                raise ValueError(f"{inst.key}: bands {prev.key} and {nxt.key} overlap or leave a gap")


def _check_rules(inst: Instrument) -> None:
    keys = {i.key for i in inst.items}
    levels = {lv.key for lv in inst.risk_levels}
    for rule in inst.risk_rules:
        for p in rule.when:
            if p.item is not None and p.item not in keys:
                raise ValueError(f"{inst.key}: rule {rule.key} names unknown item {p.item}")
            if p.total and inst.total is None:
                raise ValueError(f"{inst.key}: rule {rule.key} tests a total the instrument does not have")
        if rule.risk_level is not None and rule.risk_level not in levels:
            raise ValueError(f"{inst.key}: rule {rule.key} names unknown risk level {rule.risk_level}")
    if inst.risk_levels and inst.risk_level is None:
        raise ValueError(f"{inst.key}: risk levels need the LOINC term they are reported under")
    ranks = [lv.rank for lv in inst.risk_levels]
    if len(set(ranks)) != len(ranks) or (ranks and min(ranks) != 0):
        raise ValueError(f"{inst.key}: risk level ranks are distinct and start at 0 (no risk identified)")
