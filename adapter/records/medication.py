"""Medications: orders written by the clinic's prescribers, and what the client reports taking from elsewhere."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, PositiveInt, StringConstraints, model_validator

from adapter.records.common import EncounterLinked, FhirPositiveInt, Instant, RecordId, ShortText, Strict

RxNormCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]
Route = Literal["oral", "sublingual", "buccal", "intramuscular", "subcutaneous", "intravenous", "transdermal", "nasal"]


class Drug(Strict):
    rxnorm: RxNormCode | None = Field(default=None, description="RxNorm RXCUI")
    text: ShortText


class Dosage(Strict):
    """Structured dose and frequency plus the sig as written."""

    text: ShortText
    dose_value: Decimal | None = Field(default=None, gt=0)
    dose_unit: Literal["mg", "mL", "ug", "g", "{tablet}", "{film}", "{capsule}", "{patch}", "[iU]"] | None = None
    route: Route | None = None
    frequency: FhirPositiveInt | None = Field(default=None, description="doses per period (a FHIR positiveInt)")
    period: PositiveInt = Field(default=1, description="FHIR Timing.repeat.period is a decimal")
    period_unit: Literal["h", "d", "wk", "mo"] = "d"
    as_needed: bool = False

    @model_validator(mode="after")
    def _dose_has_unit(self) -> Self:
        if (self.dose_value is None) != (self.dose_unit is None):
            raise ValueError("give dose_value and dose_unit together")
        return self


class MedicationOrder(EncounterLinked):
    kind: Literal["medication_order"] = "medication_order"
    drug: Drug
    prescriber: RecordId = Field(description="practitioner id")
    authored_at: Instant
    status: Literal["active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft"]
    intent: Literal["order", "plan", "proposal"] = "order"
    dosage: Dosage | None = None
    start: date | None = None
    end: date | None = None
    reasons: tuple[RecordId, ...] = Field(default=(), description="diagnosis ids")
    dispensed_by_program: bool = Field(default=False, description="dispensed or administered on site (e.g. methadone)")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start and self.end and self.end < self.start:
            raise ValueError("medication ends before it starts")
        return self


class ReportedMedication(EncounterLinked):
    """A medication the client reports taking, prescribed outside the clinic."""

    kind: Literal["reported_medication"] = "reported_medication"
    drug: Drug
    status: Literal["active", "completed", "stopped", "on-hold", "intended", "not-taken", "unknown"] = "active"
    reported_at: Instant
    prescriber_text: ShortText | None = Field(default=None, description="outside prescriber, as reported")
    reason_text: ShortText | None = Field(default=None, description="why the client takes it, as reported")
    dosage_text: ShortText | None = None
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start and self.end and self.end < self.start:
            raise ValueError("medication ends before it starts")
        return self
