"""Values the engine passes around: the disclosure request (input) and the decision (output of decide).

The request is a frozen pydantic model (it is parsed from the CLI and the API); the decision is a tree of frozen
dataclasses. Both are values: equal inputs give equal values, and nothing in them is mutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.consent.timing import clinic_zone
from adapter.consent.vocab import vocabulary

Status = Literal["permit", "deny"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identifier(_Frozen):
    """A business identifier: system and value (e.g. http://hl7.org/fhir/sid/us-npi | 1384772053)."""

    system: str = Field(min_length=1)
    value: str = Field(min_length=1)

    @classmethod
    def parse(cls, text: str) -> Identifier:
        """ "system|value" -> Identifier."""
        system, sep, value = text.rpartition("|")
        if not sep:
            raise ValueError("an identifier is written system|value")
        return cls(system=system, value=value)

    def __str__(self) -> str:
        return f"{self.system}|{self.value}"


class Emergency(_Frozen):
    """A bona fide medical emergency (42 CFR 2.51): its nature and who declared it, for the documentation."""

    description: str = Field(min_length=1)
    declared_by: str = Field(min_length=1)


class HipaaRestriction(_Frozen):
    """A restriction the client requested and the clinic agreed to (45 CFR 164.522(a)), or the required one on
    self-paid services to a health plan. Empty lists mean "any"."""

    recipients: tuple[Identifier, ...] = ()
    purposes: tuple[str, ...] = ()
    description: str = ""


class DisclosureRequest(_Frozen):
    """Who receives what for which purpose, at which instant, with which attested context."""

    recipient_organizations: tuple[Identifier, ...] = ()
    recipient_practitioners: tuple[Identifier, ...] = ()
    recipient_name: str = ""
    purpose: str = Field(description="v3-ActReason purpose of use, e.g. TREAT, HPAYMT, COVAUTH, ETREAT, HLEGAL")
    instant: AwareDatetime = Field(description="the disclosure instant; consents are judged at it, never the clock")
    timezone: str | None = Field(
        default=None,
        description="IANA time zone of the clinic's calendar: a date-only consent bound, or a birth date, is a day"
        " of it (None: the day in the instant's own offset)",
    )
    disclosed_by: str = Field(default="bh-fhir-adapter", min_length=1, description="who discloses (for the audit)")
    emergency: Emergency | None = None
    recipient_is_medical_personnel: bool = False
    treating_relationship: bool = Field(default=False, description="attested treating relationship with the client")
    minor_may_consent_alone: bool = Field(default=False, description="state law lets the minor consent alone")
    hipaa_restrictions: tuple[HipaaRestriction, ...] = ()

    @field_validator("purpose")
    @classmethod
    def _known_purpose(cls, value: str) -> str:
        if not vocabulary().is_purpose(value):
            raise ValueError(f"unknown purpose of use {value!r} (v3-ActReason PurposeOfUse codes)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            clinic_zone(value)
        return value

    @property
    def local_instant(self) -> datetime:
        """The instant on the clinic's clock: its calendar date is the day date-only bounds are judged by."""
        return self.instant.astimezone(clinic_zone(self.timezone)) if self.timezone else self.instant

    @model_validator(mode="after")
    def _has_recipient(self) -> Self:
        if not (self.recipient_organizations or self.recipient_practitioners):
            raise ValueError("name the recipient: at least one organization or practitioner identifier")
        return self

    @property
    def recipient_identifiers(self) -> frozenset[tuple[str, str]]:
        return frozenset((i.system, i.value) for i in (*self.recipient_organizations, *self.recipient_practitioners))


@dataclass(frozen=True)
class ConsentRef:
    """A consent as the reasons cite it: resource id, meta.versionId and business identifier."""

    id: str
    version: str | None = None
    identifier: str | None = None

    def __str__(self) -> str:
        label = self.identifier.rpartition("|")[2] if self.identifier else self.id
        return f"{label} (v{self.version})" if self.version else label


@dataclass(frozen=True)
class Reason:
    rule: str  # id in data/rules.yaml
    consent: ConsentRef | None = None
    detail: str = ""


@dataclass(frozen=True)
class ConsentAssessment:
    """Whether a consent is in force at the request instant, for Part 2 and for HIPAA data, and why."""

    consent: ConsentRef
    in_force_part2: bool
    in_force_hipaa: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ResourceDecision:
    resource: str  # "Condition/<id>"
    status: Status
    reasons: tuple[Reason, ...]
    obligations: tuple[str, ...] = ()
    part2: bool = False
    relied_on: tuple[ConsentRef, ...] = ()  # consents whose permit released it

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.rule for r in self.reasons))


@dataclass(frozen=True)
class Decision:
    """permit/deny per resource, with obligations and reasons; and the assessment of every consent considered."""

    request: DisclosureRequest
    resources: tuple[ResourceDecision, ...]
    consents: tuple[ConsentAssessment, ...]

    def of(self, key: str) -> ResourceDecision | None:
        return next((d for d in self.resources if d.resource == key), None)

    @property
    def permitted(self) -> frozenset[str]:
        return frozenset(d.resource for d in self.resources if d.status == "permit")

    @property
    def obligations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o for d in self.resources if d.status == "permit" for o in d.obligations))
