"""Building blocks shared by the clinic's record kinds.

Records are what the clinic's EHR exports, before any FHIR. They are strict (unknown fields are errors),
immutable, and carry only what the clinic knows; FHIR concerns (ids, systems, profiles) belong to the mappings.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Literal, Self

from annotated_types import Gt, Le
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

# Characters FHIR text cannot carry: XML 1.0 (so FHIR XML) has no way to write them, and R4's string datatype says
# strings SHOULD NOT hold code points below 32 other than tab, line feed and carriage return. Also U+FFFE and
# U+FFFF (not XML characters) and lone surrogates (pydantic already refuses those in a str; this is a second line).
_NOT_XML_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_chars(value: str) -> str:
    """Refuse text that FHIR (XML or JSON) cannot carry, at input, rather than fail when the output is written."""
    found = _NOT_XML_CHAR.search(value)
    if found:
        # The code point, never the text around it: messages never quote a record's content.
        raise ValueError(
            f"character U+{ord(found.group()):04X} is not allowed: text may hold tab, line feed and carriage "
            "return, but no other control character, U+FFFE or U+FFFF"
        )
    return value


# A record id: what the clinic's EHR calls the record. Stable across exports; the basis of FHIR ids.
RecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), AfterValidator(_xml_chars)
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), AfterValidator(_xml_chars)
]
Uri = Annotated[str, StringConstraints(pattern=r"^\S+$", min_length=1), AfterValidator(_xml_chars)]
Npi = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]

# FHIR R4 integer and positiveInt are signed 32-bit: a count beyond this has no FHIR form, so it is refused here,
# at input, rather than when the mapping builds the resource.
FHIR_INTEGER_MAX = 2_147_483_647
FhirPositiveInt = Annotated[int, Gt(0), Le(FHIR_INTEGER_MAX)]

# R4 instant/dateTime: the offset is Z or -14:00..+14:00 in whole minutes (the datatype's regex).
_MAX_OFFSET = timedelta(hours=14)


def _fhir_offset(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is not None and (abs(offset) > _MAX_OFFSET or offset % timedelta(minutes=1)):
        raise ValueError("the timezone offset must be Z or between -14:00 and +14:00 (FHIR instant)")
    return value


# An instant: a date and time with its timezone, as FHIR can carry it.
Instant = Annotated[AwareDatetime, AfterValidator(_fhir_offset)]


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

    @model_validator(mode="after")
    def _has_content(self) -> Self:
        # FHIR ele-1 (an element has a value or children); `use` alone says nothing about where the client lives.
        if not (self.line or self.city or self.state or self.postal_code or self.country):
            raise ValueError("an address needs a line, city, state, postal_code or country")
        return self


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

    start: Instant | None = None
    end: Instant | None = None

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
