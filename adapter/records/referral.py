"""A referral to another provider; its status comes back from the recipient on a FHIR Task."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from adapter.records.common import EncounterLinked, Instant, RecordId, ShortText

Specialty = Literal["psychiatry", "primary-care", "sud-treatment", "higher-level-of-care", "community-resource"]
ReferralStatus = Literal["draft", "sent", "accepted", "declined", "in-progress", "completed", "cancelled"]


class Referral(EncounterLinked):
    kind: Literal["referral"] = "referral"
    specialty: Specialty
    to_organization: RecordId | None = None
    to_practitioner: RecordId | None = None
    reasons: tuple[RecordId, ...] = Field(default=(), description="diagnosis ids")
    reason_text: ShortText | None = None
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"
    supporting_assessments: tuple[RecordId, ...] = ()
    status: ReferralStatus = "sent"
    status_reason: ShortText | None = Field(default=None, description="why declined or cancelled")
    requested_by: RecordId = Field(description="practitioner id")
    authored_at: Instant

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not (self.to_organization or self.to_practitioner):
            raise ValueError("a referral needs a recipient: to_organization or to_practitioner")
        if not (self.reasons or self.reason_text):
            raise ValueError("a referral needs a reason: diagnosis ids or reason_text")
        if self.status in ("declined", "cancelled") and not self.status_reason:
            raise ValueError(f"a {self.status} referral needs a status_reason")
        return self
