"""A client's consent to disclosure, as the clinic records it (the FHIR Consent is built by the mapping)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from adapter.records.common import ClinicalRecord, DatePeriod, Instant, RecordId, ShortText, Strict

# Purposes of use, as codes of http://terminology.hl7.org/CodeSystem/v3-ActReason.
Purpose = Literal[
    "TREAT", "ETREAT", "HPAYMT", "HOPERAT", "CAREMGT", "COVERAGE", "HRESCH", "PUBHLTH", "HLEGAL", "PATRQT"
]
# Categories of information, mapped to security labels of http://terminology.hl7.org/CodeSystem/v3-ActCode.
Category = Literal[
    "behavioral-health",
    "mental-health",
    "substance-use",
    "psychotherapy-notes",
    "hiv",
    "sexual-violence",
]
RecipientClass = Literal["treating-providers"]


class Recipient(Strict):
    """Exactly one of: a named organization, a named practitioner, or a class of recipients."""

    organization: RecordId | None = None
    practitioner: RecordId | None = None
    recipient_class: RecipientClass | None = Field(
        default=None, description="a general designation, e.g. 'my treating providers' (42 CFR 2.31(a)(4))"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [v for v in (self.organization, self.practitioner, self.recipient_class) if v]
        if len(given) != 1:
            raise ValueError("a recipient is exactly one of organization, practitioner or recipient_class")
        return self


class Grantor(Strict):
    party: Literal["client", "related"]
    related: RecordId | None = Field(default=None, description="the related party's id when party is 'related'")

    @model_validator(mode="after")
    def _related_named(self) -> Self:
        if (self.party == "related") != bool(self.related):
            raise ValueError("name the related party exactly when party is 'related'")
        return self


class Consent(ClinicalRecord):
    kind: Literal["consent"] = "consent"
    grantor: Grantor
    recipients: tuple[Recipient, ...] = Field(min_length=1)
    purposes: tuple[Purpose, ...] = Field(min_length=1)
    categories_permitted: tuple[Category, ...] = ()
    categories_denied: tuple[Category, ...] = ()
    period: DatePeriod
    signed_at: Instant
    revoked_at: Instant | None = None
    part2: bool | None = Field(
        default=None, description="a 42 CFR Part 2 consent; when absent, true if the program is a Part 2 program"
    )
    description: ShortText | None = None
    witness: RecordId | None = Field(default=None, description="practitioner id")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        overlap = set(self.categories_permitted) & set(self.categories_denied)
        if overlap:
            raise ValueError(f"categories both permitted and denied: {sorted(overlap)}")
        if self.revoked_at and self.revoked_at < self.signed_at:
            raise ValueError("revoked before it was signed")
        if not self.period.start:
            raise ValueError("a consent period needs a start date")
        return self
