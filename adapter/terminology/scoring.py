"""Score a completed form against its catalog definition. Pure: no I/O, no clock.

Rules, because public scorers get them wrong (shared/reference/terminology-and-profiles.md §9):
- an answer outside the item's answer list is an error, never clamped;
- a total exists only when every scored item is answered: no missing-as-zero, no partial sum;
- a stated total is checked, and cannot be checked when items are missing (that is an error too);
- risk rules look at the items that were answered, whatever the total (PHQ-9 item 9 fires on its own);
- a rule on the total fires on an incomplete form only when it is certain: when it would fire whatever the missing
  items are answered (PHQ-9 items already summing to 20 are severe). No total is reported for that form all the same.
Error messages name the instrument, the item and the allowed answers, never the answer given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from adapter.errors import Problem, ScoringError
from adapter.terminology import systems
from adapter.terminology.models import (
    AnswerOption,
    Band,
    Coding,
    Cutoff,
    Instrument,
    Item,
    RiskLevel,
    RiskRule,
    Sex,
)

# An answer: the option's ordinal (its score), its LOINC answer code ("LA6569-3"), or True/False for yes/no
# items. None means "not answered".
Answer = int | bool | str | None

_SAFE_KEY = re.compile(r"^/?[A-Za-z0-9._-]{1,32}$")


@dataclass(frozen=True)
class ResolvedAnswer:
    item: Item
    option: AnswerOption

    @property
    def value(self) -> int:
        """The ordinal this answer scores."""
        return self.option.value

    @property
    def coding(self) -> Coding:
        """The answer as LOINC LA coding, or text only where LOINC has no answer code."""
        return self.option.coding


@dataclass(frozen=True)
class ScoreResult:
    instrument: Instrument
    answers: tuple[ResolvedAnswer, ...]  # in form order
    total: int | None  # None whenever a scored item is missing, and for instruments without a total
    missing: tuple[str, ...]  # keys of items that should have been answered and were not
    band: Band | None
    risk_rules: tuple[RiskRule, ...]  # rules that fired
    risk_level: RiskLevel | None  # instruments with risk levels (C-SSRS); None when it cannot be decided
    cutoffs_met: tuple[Cutoff, ...]
    cutoffs_not_applied: tuple[Cutoff, ...]  # sex-specific cut-offs skipped because no sex was supplied

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def total_coding(self) -> Coding | None:
        """The code the total goes out under: always this instrument's own total term."""
        return self.instrument.total.coding if self.instrument.total else None

    def total_quantity(self) -> dict[str, int | str] | None:
        """The total as a FHIR Quantity in UCUM ({score}), or None when there is no total."""
        if self.total is None:
            return None
        unit = self.instrument.unit
        return {"value": self.total, "unit": unit, "system": systems.UCUM, "code": unit}

    def answer(self, key: str) -> ResolvedAnswer | None:
        return next((a for a in self.answers if a.item.key == key), None)


def score(
    instrument: Instrument,
    answers: Mapping[str, Answer],
    *,
    stated_total: int | None = None,
    sex: Sex | None = None,
) -> ScoreResult:
    """Resolve every answer, compute the total, band, cut-offs, fired risk rules and risk level.

    `answers` maps an item key ("9"), its linkId ("/44260-8") or its LOINC code ("44260-8") to an answer.
    Raises ScoringError for unknown items, answers outside the item's list, and stated totals that disagree
    with the items or cannot be checked.
    """
    resolved = _resolve_all(instrument, answers)
    missing = tuple(i.key for i in instrument.items if i.key not in resolved and _expected(i, resolved))
    total = _total(instrument, resolved)
    _check_stated_total(instrument, resolved, total, stated_total)
    fired = tuple(r for r in instrument.risk_rules if _fires(r, instrument, resolved, total))
    met, not_applied = _cutoffs(instrument, total, sex)
    return ScoreResult(
        instrument=instrument,
        answers=tuple(resolved[i.key] for i in instrument.items if i.key in resolved),
        total=total,
        missing=missing,
        band=instrument.band_for(total) if total is not None else None,
        risk_rules=fired,
        risk_level=_risk_level(instrument, fired, missing),
        cutoffs_met=met,
        cutoffs_not_applied=not_applied,
    )


# One ResolvedAnswer per (catalog item, option): catalog objects live as long as the process, and scoring runs
# once per assessment on the mapping's hot path.
_RESOLVED: dict[tuple[int, int], ResolvedAnswer] = {}


def _resolved(item: Item, option: AnswerOption) -> ResolvedAnswer:
    key = (id(item), option.value)
    found = _RESOLVED.get(key)
    if found is None:
        found = _RESOLVED[key] = ResolvedAnswer(item, option)
    return found


def _resolve_all(instrument: Instrument, answers: Mapping[str, Answer]) -> dict[str, ResolvedAnswer]:
    resolved: dict[str, ResolvedAnswer] = {}
    seen: set[str] = set()
    problems: list[Problem] = []
    index = instrument.item_index
    for raw_key, value in answers.items():
        # Fast path, the common case: an item key or code and an in-range ordinal, answered once.
        item = index.get(raw_key) if type(raw_key) is str else None
        if item is not None and type(value) is int and item.key not in seen:
            option = item.answers.value_index.get(value)
            if option is not None:
                seen.add(item.key)
                resolved[item.key] = _resolved(item, option)
                continue
        # Item numbers sometimes arrive as ints from spreadsheets; bools are never item numbers.
        is_number = isinstance(raw_key, int) and not isinstance(raw_key, bool)
        key = str(raw_key) if is_number else raw_key
        item = instrument.item(key.removeprefix("/")) if isinstance(key, str) else None
        if item is None:
            shown = repr(key) if isinstance(key, str) and _SAFE_KEY.match(key) else "an unrecognised key"
            problems.append(_problem(instrument, None, f"no item {shown}"))
            continue
        if item.key in seen:
            problems.append(_problem(instrument, item, "answered twice (by item key and by LOINC code)"))
            continue
        seen.add(item.key)
        if value is None:
            continue
        option, error = _option(item, value)
        if option is None:
            problems.append(_problem(instrument, item, error))
        else:
            resolved[item.key] = _resolved(item, option)
    problems += _not_asked(instrument, resolved, seen)
    if len(problems) == 1:
        raise ScoringError(problems[0].message, problems)
    if problems:
        raise ScoringError(f"{instrument.key}: {len(problems)} problems with the answers", problems)
    return resolved


def _not_asked(instrument: Instrument, resolved: Mapping[str, ResolvedAnswer], seen: set[str]) -> list[Problem]:
    """Answers to items the form did not ask (R4 Questionnaire.item.enableWhen: a disabled item captures no
    answer). A C-SSRS "within the past 3 months: yes" after "no suicidal behaviour" contradicts the form: scoring
    it would report a risk level from answers that cannot both be true."""
    problems = []
    for item in instrument.gated_items:
        gate = item.enable_when
        answer = resolved.get(item.key)
        # "No" to a question that was not asked (a paper form with every box ticked) contradicts nothing.
        if gate is None or answer is None or answer.value == item.answers.min_value:
            continue
        given = resolved.get(gate.item)
        if given is None and gate.item in seen:
            continue  # the gating answer is itself wrong: that problem is reported, not its consequences
        if given is None:
            problems.append(_problem(instrument, item, f"answered, but item {gate.item}, which it follows, is not"))
        elif given.value != gate.value:
            asked_when = gate.item_answer_text(instrument)
            problems.append(
                _problem(instrument, item, f"answered, but it is asked only when item {gate.item} is {asked_when}")
            )
    return problems


def _option(item: Item, value: Answer) -> tuple[AnswerOption | None, str]:
    answers = item.answers
    if isinstance(value, bool):
        if not answers.is_yes_no:
            return None, "takes an ordinal or a LOINC answer code, not yes/no"
        return answers.by_answer(value), ""
    if isinstance(value, int):
        option = answers.by_value(value)
        if option is not None:
            return option, ""
        allowed = ", ".join(str(o.value) for o in answers.options)
        return None, f"answer is out of range (allowed: {allowed})"
    if isinstance(value, str):
        option = answers.by_code(value.strip())
        if option is not None:
            return option, ""
        codes = ", ".join(o.code for o in answers.options if o.code) or "none: give the ordinal"
        return None, f"answer code is not one of the item's codes ({codes})"
    return None, "answer must be an ordinal, a LOINC answer code, or yes/no"


def _problem(instrument: Instrument, item: Item | None, message: str) -> Problem:
    where = f"{instrument.key} item {item.key}" if item else instrument.key
    return Problem(f"{where}: {message}", field=f"answers.{item.key}" if item else "answers")


def _expected(item: Item, resolved: Mapping[str, ResolvedAnswer]) -> bool:
    """Should this item have been answered? Required, and asked (its gating answer, if any, was given)."""
    if not item.is_required:
        return False
    gate = item.enable_when
    if gate is None:
        return True
    given = resolved.get(gate.item)
    return given is not None and given.value == gate.value


def _total(instrument: Instrument, resolved: Mapping[str, ResolvedAnswer]) -> int | None:
    if instrument.scoring != "sum":
        return None
    scored = instrument.scored_items
    if any(i.key not in resolved for i in scored):
        return None
    return sum(resolved[i.key].value for i in scored)


def _check_stated_total(
    instrument: Instrument,
    resolved: Mapping[str, ResolvedAnswer],
    total: int | None,
    stated: int | None,
) -> None:
    if stated is None:
        return
    where = f"{instrument.key} stated total"
    if isinstance(stated, bool) or not isinstance(stated, int):
        message = f"{where}: must be a whole number"
        raise ScoringError(message, [Problem(message, field="stated_total")])
    if instrument.total is None:
        message = f"{where}: {instrument.key} has no total score"
        raise ScoringError(message, [Problem(message, field="stated_total")])
    if total is None:
        absent = ", ".join(i.key for i in instrument.scored_items if i.key not in resolved)
        message = f"{where}: cannot be checked, items {absent} are missing"
        raise ScoringError(message, [Problem(message, field="stated_total")])
    if stated != total:
        message = f"{where}: does not match the sum of the item answers"
        raise ScoringError(message, [Problem(message, field="stated_total")])


def _fires(rule: RiskRule, instrument: Instrument, resolved: Mapping[str, ResolvedAnswer], total: int | None) -> bool:
    for predicate in rule.when:
        if predicate.item is not None:
            given = resolved.get(predicate.item)
            if given is None or not predicate.holds(given.value):
                return False
        elif total is not None:
            if not predicate.holds(total):
                return False
        else:
            # Incomplete form: the predicate holds only if it holds for every total the form could still reach.
            # Predicates are gt, ge (monotone) or eq, so holding at both ends of the range is holding everywhere.
            bounds = _total_bounds(instrument, resolved)
            if bounds is None or not (predicate.holds(bounds[0]) and predicate.holds(bounds[1])):
                return False
    return True


def _total_bounds(instrument: Instrument, resolved: Mapping[str, ResolvedAnswer]) -> tuple[int, int] | None:
    """Lowest and highest total an incomplete form could still reach: each missing scored item at its lowest and
    highest answer. Only for deciding a rule; never reported as a total."""
    if instrument.scoring != "sum":
        return None
    low = high = 0
    for item in instrument.scored_items:
        given = resolved.get(item.key)
        if given is not None:
            low += given.value
            high += given.value
        else:
            low += item.answers.min_value
            high += item.answers.max_value
    return low, high


def _risk_level(instrument: Instrument, fired: tuple[RiskRule, ...], missing: tuple[str, ...]) -> RiskLevel | None:
    """Highest level a fired rule establishes. With items missing, only the top level is certain."""
    if not instrument.risk_levels:
        return None
    levels = {lv.key: lv for lv in instrument.risk_levels}
    reached = [levels[r.risk_level] for r in fired if r.risk_level is not None]
    highest = max(reached, key=lambda lv: lv.rank, default=None)
    top_rank = max(lv.rank for lv in instrument.risk_levels)
    if highest is not None and highest.rank == top_rank:
        return highest
    if missing:
        return None
    return highest or min(instrument.risk_levels, key=lambda lv: lv.rank)


def _cutoffs(
    instrument: Instrument, total: int | None, sex: Sex | None
) -> tuple[tuple[Cutoff, ...], tuple[Cutoff, ...]]:
    met: list[Cutoff] = []
    not_applied: list[Cutoff] = []
    for cutoff in instrument.cutoffs:
        if cutoff.sex is not None and sex is None:
            not_applied.append(cutoff)
        elif total is not None and cutoff.sex in (None, sex) and total >= cutoff.min_total:
            met.append(cutoff)
    return tuple(met), tuple(not_applied)
