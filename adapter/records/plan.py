"""Treatment plans: problems, measurable goals and interventions."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, PositiveInt, model_validator

from adapter.records.common import (
    DatePeriod,
    EncounterLinked,
    FhirPositiveInt,
    Instant,
    RecordId,
    ShortText,
    Strict,
    Text,
)

PlanStatus = Literal["draft", "active", "on-hold", "revoked", "completed", "entered-in-error"]
GoalStatus = Literal["proposed", "planned", "accepted", "active", "on-hold", "completed", "cancelled", "rejected"]
Modality = Literal[
    "cbt",
    "dbt",
    "emdr",
    "motivational-interviewing",
    "medication-management",
    "group-therapy",
    "individual-psychotherapy",
    "family-therapy",
    "case-management",
    "peer-support",
]


class GoalMeasure(Strict):
    """A goal measured by an instrument's total score: e.g. PHQ-9 total < 10 by a due date."""

    instrument: str = Field(description="catalog key or alias, e.g. phq-9")
    comparator: Literal["<", "<=", ">=", ">"]
    value: int = Field(ge=0)


class Goal(Strict):
    id: RecordId
    description: Text
    measure: GoalMeasure | None = None
    due_date: date | None = None
    status: GoalStatus = "active"
    start_date: date | None = None

    @model_validator(mode="after")
    def _measurable_has_due_date(self) -> Self:
        if self.measure and not self.due_date:
            raise ValueError("a measurable goal needs a due date")
        return self


class Frequency(Strict):
    """`count` sessions every `period` `unit`: 1 per 1 wk = weekly."""

    count: FhirPositiveInt = Field(description="FHIR Timing.repeat.frequency, a positiveInt")
    period: PositiveInt = 1
    unit: Literal["d", "wk", "mo"]


class Intervention(Strict):
    id: RecordId
    modality: Modality
    description: ShortText | None = None
    frequency: Frequency | None = None
    provider: RecordId | None = Field(default=None, description="practitioner id")
    goals: tuple[RecordId, ...] = Field(default=(), description="ids of the goals this intervention serves")


class Signature(Strict):
    role: Literal["author", "client", "guardian", "supervisor"]
    signer: RecordId = Field(description="practitioner id, the client's id, or a related party's id")
    signed_at: Instant


class TreatmentPlan(EncounterLinked):
    kind: Literal["treatment_plan"] = "treatment_plan"
    title: ShortText | None = None
    status: PlanStatus
    period: DatePeriod
    created_at: Instant
    author: RecordId = Field(description="practitioner id")
    problems: tuple[RecordId, ...] = Field(default=(), description="diagnosis ids")
    goals: tuple[Goal, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    review_date: date | None = None
    signatures: tuple[Signature, ...] = ()

    @model_validator(mode="after")
    def _internal_links(self) -> Self:
        goal_ids = [g.id for g in self.goals]
        if len(goal_ids) != len(set(goal_ids)):
            raise ValueError("goal ids must be distinct")
        intervention_ids = [i.id for i in self.interventions]
        if len(intervention_ids) != len(set(intervention_ids)):
            raise ValueError("intervention ids must be distinct")
        for intervention in self.interventions:
            unknown = set(intervention.goals) - set(goal_ids)
            if unknown:
                raise ValueError(f"intervention {intervention.id} names unknown goals {sorted(unknown)}")
        return self
