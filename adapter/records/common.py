"""Building blocks shared by the clinic's record kinds.

Records are what the clinic's EHR exports, before any FHIR. They are strict (unknown fields are errors),
immutable, and carry only what the clinic knows; FHIR concerns (ids, systems, profiles) belong to the mappings.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

# A record id: what the clinic's EHR calls the record. Stable across exports; the basis of FHIR ids.
RecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Uri = Annotated[str, StringConstraints(pattern=r"^\S+$", min_length=1)]
Npi = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]


class Strict(BaseModel):
    """Base of every record part: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Identifier(Strict):
    """A business identifier. `type` follows http://terminology.hl7.org/CodeSystem/v2-0203 (MR, NPI, MB ...)."""

    system: Uri
    value: ShortText
    type: Literal["MR", "NPI", "MB", "SN", "DL", "PPN", "PI", "TAX", "XX"] | None = None


class HumanName(Strict):
    family: ShortText | None = None
    given: tuple[ShortText, ...] = ()
    prefix: tuple[ShortText, ...] = ()
    suffix: tuple[ShortText, ...] = ()
    use: Literal["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"] | None = None

    @model_validator(mode="after")
    def _has_a_part(self) -> Self:
        # US Core us-core-6: a name needs a family or a given name.
        if not self.family and not self.given:
            raise ValueError("a name needs a family or a given name")
        return self


class ContactPoint(Strict):
    system: Literal["phone", "fax", "email", "pager", "url", "sms", "other"]
    value: ShortText
    use: Literal["home", "work", "temp", "old", "mobile"] | None = None


class Address(Strict):
    line: tuple[ShortText, ...] = ()
    city: ShortText | None = None
    state: ShortText | None = None
    postal_code: ShortText | None = None
    country: ShortText | None = None
    use: Literal["home", "work", "temp", "old", "billing"] | None = None


class DatePeriod(Strict):
    """A period of calendar dates; the end is inclusive and may be open."""

    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start and self.end and self.end < self.start:
            raise ValueError("period ends before it starts")
        return self


class InstantPeriod(Strict):
    """A period of instants; timezones are required."""

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start and self.end and self.end < self.start:
            raise ValueError("period ends before it starts")
        return self


class ClinicalRecord(Strict):
    """Fields every clinical record has: its id, the client it is about and the program that produced it."""

    id: RecordId
    client: RecordId
    program: RecordId = Field(description="the program (unit) that produced the record")


class EncounterLinked(ClinicalRecord):
    """A clinical record that may name the visit it came from."""

    visit: RecordId | None = None
