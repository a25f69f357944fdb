"""A diagnosis on the client's problem list (ICD-10-CM; DSM-5-TR diagnoses are ICD-10-CM codes)."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

from adapter.records.common import EncounterLinked, Instant, RecordId, ShortText

ClinicalStatus = Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"]
VerificationStatus = Literal["unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"]


class Diagnosis(EncounterLinked):
    kind: Literal["diagnosis"] = "diagnosis"
    code: str = Field(description="ICD-10-CM, dotted or not: F33.1, F3341, F32.A")
    dsm5_text: ShortText | None = None
    clinical_status: ClinicalStatus = "active"
    verification_status: VerificationStatus = "confirmed"
    onset: date | None = None
    abatement: date | None = None
    recorded_at: Instant
    recorded_by: RecordId | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # FHIR con-4: an abated condition is inactive, resolved or in remission.
        if self.abatement and self.clinical_status not in ("inactive", "resolved", "remission"):
            raise ValueError("an abated diagnosis must be inactive, resolved or in remission")
        if self.onset and self.abatement and self.abatement < self.onset:
            raise ValueError("abatement is before onset")
        return self
