"""The utilization-review request (a value, parsed by the CLI and the API) and the data it is judged against
(adapter/ur/data/ur.yaml: instruments, levels of care, the worksheet definition)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Literal, Self

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Kind = Literal["mh", "sud"]
Purpose = Literal["HPAYMT", "COVAUTH"]

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
_HCPCS_CODE = re.compile(r"^[A-V]\d{4}$")
_CPT_CODE = re.compile(r"^\d{4}[0-9FTU]$")


@dataclass(frozen=True)
class Instrument:
    code: str  # LOINC code of the total score / result Observation
    name: str
    reviews: Literal["all", "sud"]


@dataclass(frozen=True)
class LevelOfCare:
    code: str
    display: str
    kind: Kind
    service_type: str  # X12 service type code (code list 1365)
    claim_type: Literal["professional", "institutional"]


@dataclass(frozen=True)
class Catalog:
    instruments: tuple[Instrument, ...]
    lookback_days: int
    level_system: str
    levels: dict[str, LevelOfCare]
    worksheet: dict[str, Any]

    def instruments_for(self, kind: Kind) -> tuple[Instrument, ...]:
        return tuple(i for i in self.instruments if i.reviews == "all" or kind == "sud")


@cache
def catalog() -> Catalog:
    raw = yaml.safe_load(resources.files("adapter.ur").joinpath("data/ur.yaml").read_text(encoding="utf-8"))
    return Catalog(
        instruments=tuple(Instrument(str(i["code"]), i["name"], i["reviews"]) for i in raw["instruments"]),
        lookback_days=int(raw["lookback_days"]),
        level_system=raw["level_of_care_system"],
        levels={
            lvl["code"]: LevelOfCare(lvl["code"], lvl["display"], lvl["kind"], lvl["service_type"], lvl["claim_type"])
            for lvl in raw["levels_of_care"]
        },
        worksheet=raw["worksheet"],
    )


class ServiceCode(BaseModel):
    """The requested service: a CPT or HCPCS code (or any system|code)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(min_length=1)
    code: str = Field(min_length=1, max_length=64)
    display: str | None = Field(default=None, max_length=200)

    @classmethod
    def parse(cls, text: str) -> ServiceCode:
        """ "system|code", or a bare code: HCPCS Level II (letter + 4 digits) or CPT (5 characters)."""
        system, sep, code = text.rpartition("|")
        if sep:
            return cls(system=system, code=code)
        if _HCPCS_CODE.match(text):
            return cls(system=HCPCS, code=text)
        if _CPT_CODE.match(text):
            return cls(system=CPT, code=text)
        raise ValueError(f"{text!r} is neither a CPT nor a HCPCS code: write it as system|code")

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code} | ({"display": self.display} if self.display else {})


class UrAsk(BaseModel):
    """What a caller asks for: whose package, to which payer, for which service and level of care, when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: str = Field(min_length=1, max_length=64, description="the client's record id, e.g. cl-08")
    payer: str = Field(min_length=1, max_length=64, description="partner id of an insurer (partners file)")
    service: ServiceCode
    level_of_care: str = Field(description="a level-of-care code of adapter/ur/data/ur.yaml, e.g. asam-2.1")
    start: date
    end: date
    purpose: Purpose = Field("HPAYMT", description="HPAYMT (payment) or COVAUTH (coverage authorization)")
    member_id: str | None = Field(None, max_length=64, description="member id, if the client's record lacks it")

    @field_validator("service", mode="before")
    @classmethod
    def _service(cls, value: Any) -> Any:
        return ServiceCode.parse(value) if isinstance(value, str) else value

    @field_validator("level_of_care")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in catalog().levels:
            raise ValueError(f"unknown level of care {value!r} (known: {', '.join(catalog().levels)})")
        return value

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.end < self.start:
            raise ValueError("the requested period ends before it starts")
        return self

    @property
    def level(self) -> LevelOfCare:
        return catalog().levels[self.level_of_care]


class UrRequest(UrAsk):
    """An ask fixed at an instant (the caller's, or the clock's): consents are judged at it."""

    instant: AwareDatetime = Field(description="the request instant; consents are judged at it")
