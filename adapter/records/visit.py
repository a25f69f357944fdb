"""Visits (encounters): sessions, intakes, medication-management visits and crisis contacts."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from adapter.records.common import ClinicalRecord, InstantPeriod, RecordId, ShortText, Strict

VisitType = Literal[
    "intake",
    "individual-therapy",
    "group-therapy",
    "family-therapy",
    "medication-management",
    "crisis",
]


class Participant(Strict):
    practitioner: RecordId
    role: Literal["primary", "secondary", "attender", "consultant"] = "primary"


class Visit(ClinicalRecord):
    kind: Literal["visit"] = "visit"
    type: VisitType
    telehealth: bool = False
    status: Literal["planned", "arrived", "in-progress", "finished", "cancelled", "entered-in-error"] = "finished"
    period: InstantPeriod
    participants: tuple[Participant, ...] = ()
    location: ShortText | None = None
    diagnoses: tuple[RecordId, ...] = Field(default=(), description="diagnosis ids addressed at the visit")

    @model_validator(mode="after")
    def _has_start(self) -> Self:
        if not self.period.start:
            raise ValueError("a visit needs a start")
        if self.status == "finished" and not self.period.end:
            raise ValueError("a finished visit needs an end")
        return self
