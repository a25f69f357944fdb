"""Checks of a single record against the terminology: instruments, scores, ICD-10-CM codes.

They run after the model's own validation and report the exact field, so an integrator sees
`record A1: field answers.9: phq-9 item 9: answer is out of range (allowed: 0, 1, 2, 3)`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from adapter.errors import Problem, TerminologyError
from adapter.records import Assessment, Diagnosis, Record, TreatmentPlan
from adapter.terminology.catalog import instrument
from adapter.terminology.icd10 import normalize_icd10cm
from adapter.terminology.scoring import ScoreResult, score

# Scores computed while checking input, reused by the mapping of the same record object (pure: the score of an
# immutable record never changes). Entries leave with their record.
_SCORES: dict[int, tuple[weakref.ref[Assessment], ScoreResult]] = {}


def assessment_score(record: Assessment) -> ScoreResult:
    """The record's score (raises TerminologyError / ScoringError like `score`), computed once per record."""
    key = id(record)
    cached = _SCORES.get(key)
    if cached is not None and cached[0]() is record:
        return cached[1]
    result = score(instrument(record.instrument), record.answers, stated_total=record.stated_total)
    _SCORES[key] = (weakref.ref(record, lambda _ref, key=key: _SCORES.pop(key, None)), result)  # type: ignore[misc]
    return result


# The record kinds record_problems() looks at; the others have no terminology to check.
CHECKED_KINDS = (Assessment, Diagnosis, TreatmentPlan)


def record_problems(record: Record) -> Iterator[Problem]:
    """Problems as (field, message); the caller adds file and record id."""
    match record:
        case Assessment():
            yield from _assessment(record)
        case Diagnosis():
            try:
                normalize_icd10cm(record.code)
            except TerminologyError as exc:
                yield Problem(str(exc), field="code")
        case TreatmentPlan():
            for i, goal in enumerate(record.goals):
                if goal.measure is None:
                    continue
                try:
                    inst = instrument(goal.measure.instrument)
                except TerminologyError as exc:
                    yield Problem(str(exc), field=f"goals[{i}].measure.instrument")
                    continue
                if inst.total is None:
                    yield Problem(
                        f"{inst.key} has no total score to measure a goal by", field=f"goals[{i}].measure.instrument"
                    )
                elif not inst.total_range[0] <= goal.measure.value <= inst.total_range[1]:
                    low, high = inst.total_range
                    yield Problem(f"{inst.key} totals range {low}-{high}", field=f"goals[{i}].measure.value")
        case _:
            return


def _assessment(record: Assessment) -> Iterator[Problem]:
    try:
        instrument(record.instrument)
    except TerminologyError as exc:
        yield Problem(str(exc), field="instrument")
        return
    try:
        assessment_score(record)
    except TerminologyError as exc:
        yield from (
            (Problem(p.message, field=p.field) for p in exc.problems)
            if exc.problems
            else [Problem(str(exc), field="answers")]
        )
