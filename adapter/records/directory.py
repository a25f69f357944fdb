"""Who produces and receives records: practitioners, organizations and the clinic's programs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from adapter.records.common import (
    Address,
    ContactPoint,
    HumanName,
    Identifier,
    Npi,
    RecordId,
    ShortText,
    Strict,
)


class Practitioner(Strict):
    kind: Literal["practitioner"] = "practitioner"
    id: RecordId
    npi: Npi | None = None
    identifiers: tuple[Identifier, ...] = ()
    name: HumanName
    credentials: tuple[ShortText, ...] = Field(default=(), description="e.g. MD, LCSW, LADC, PMHNP-BC")
    telecom: tuple[ContactPoint, ...] = ()


class Organization(Strict):
    """An organization: the clinic itself, a hospital, a psychiatry practice, an insurer, a community agency."""

    kind: Literal["organization"] = "organization"
    id: RecordId
    npi: Npi | None = None
    identifiers: tuple[Identifier, ...] = ()
    name: ShortText
    type: Literal["prov", "dept", "ins", "pay", "cg", "bus", "other"] | None = Field(
        default=None, description="http://terminology.hl7.org/CodeSystem/organization-type"
    )
    part_of: RecordId | None = None
    telecom: tuple[ContactPoint, ...] = ()
    address: tuple[Address, ...] = ()


class Program(Strict):
    """A unit of the clinic that produces records (outpatient mental health, an SUD program ...).

    `part2_program` marks a federally assisted substance-use-disorder program (42 CFR 2.11): every record it
    produces is a Part 2 record, whatever its codes say.
    """

    kind: Literal["program"] = "program"
    id: RecordId
    name: ShortText
    organization: RecordId = Field(description="the organization that runs the program")
    npi: Npi | None = None
    identifiers: tuple[Identifier, ...] = ()
    part2_program: bool
    telecom: tuple[ContactPoint, ...] = ()
    address: tuple[Address, ...] = ()
