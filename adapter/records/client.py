"""The client (patient) record."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from adapter.records.common import (
    Address,
    ContactPoint,
    HumanName,
    Identifier,
    RecordId,
    Strict,
)

LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class RelatedParty(Strict):
    """A guardian, parent or other legal representative (a minor's consents are signed by one)."""

    id: RecordId
    relationship: Literal["parent", "guardian", "legal-representative", "power-of-attorney", "emergency-contact"]
    name: HumanName
    legal_representative: bool = Field(description="may consent on the client's behalf")
    telecom: tuple[ContactPoint, ...] = ()
    address: tuple[Address, ...] = ()


class Client(Strict):
    kind: Literal["client"] = "client"
    id: RecordId
    program: RecordId | None = Field(default=None, description="the program that registered the client")
    identifiers: tuple[Identifier, ...] = Field(min_length=1)
    names: tuple[HumanName, ...] = Field(min_length=1)
    birth_date: date
    gender: Literal["male", "female", "other", "unknown"] = Field(
        description="administrative gender, http://hl7.org/fhir/administrative-gender"
    )
    telecom: tuple[ContactPoint, ...] = ()
    address: tuple[Address, ...] = ()
    preferred_language: LanguageTag | None = Field(default=None, description="BCP-47, e.g. en, es, vi")
    related: tuple[RelatedParty, ...] = ()

    @model_validator(mode="after")
    def _has_mrn(self) -> Self:
        if not any(i.type == "MR" for i in self.identifiers):
            raise ValueError("a client needs a medical record number (identifier of type MR)")
        ids = [r.id for r in self.related]
        if len(ids) != len(set(ids)):
            raise ValueError("related parties need distinct ids")
        return self
