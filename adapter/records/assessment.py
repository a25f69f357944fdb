"""A standardized instrument administered to a client (PHQ-9, GAD-7, AUDIT-C, C-SSRS ...)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, PlainValidator, StringConstraints

from adapter.records.common import EncounterLinked, Instant, RecordId

ItemKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$")]
_LA_CODE = re.compile(r"^LA[0-9]{1,6}-[0-9]$")


def _answer(value: object) -> int | bool | str:
    # One clear message instead of one per union member.
    if isinstance(value, bool | int):
        return value
    if isinstance(value, str) and _LA_CODE.match(value):
        return value
    raise ValueError("an answer is an ordinal number, true/false for yes/no items, or a LOINC answer code (LA...)")


# An answer is an ordinal (0..3), an LA answer code ("LA6569-3") or yes/no for yes/no items.
Answer = Annotated[int | bool | str, PlainValidator(_answer)]


class Assessment(EncounterLinked):
    kind: Literal["assessment"] = "assessment"
    instrument: str = Field(description="catalog key or alias: phq-9, gad-7, audit-c, c-ssrs-screener ...")
    administered_at: Instant
    administered_by: RecordId | None = Field(default=None, description="practitioner id; none when self-report")
    self_reported: bool = False
    answers: dict[ItemKey, Answer] = Field(min_length=1, description="item number or LOINC item code -> answer")
    stated_total: int | None = Field(default=None, description="total as written on the form, checked")
    status: Literal["completed", "amended", "entered-in-error"] = "completed"
