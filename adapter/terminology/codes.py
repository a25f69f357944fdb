"""Code maps as data: interventions, referral targets, note types, visit types and encounter classes.

Each map is a YAML file under ``codemaps/`` whose entries carry a source per coding. Loaded once, validated
(SNOMED CT Verhoeff digits, LOINC check digits, CPT form) and returned as frozen objects. An entry with no
coding is deliberate: it goes out as text rather than under a guessed code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from adapter.errors import Problem, TerminologyError
from adapter.terminology import loinc, snomed, systems
from adapter.terminology.models import Cited, Coding, Frozen

_PACKAGE = "adapter.terminology"
_FOLDER = "codemaps"

# Short system names used in the data files.
SYSTEMS = {
    "snomed": systems.SNOMED,
    "loinc": systems.LOINC,
    "cpt": systems.CPT,
    "v3-ActCode": systems.V3_ACT_CODE,
}
_CPT = re.compile(r"^[0-9]{4}[0-9FTU]$")  # Category I (5 digits), II (....F) and III (....T)
_ACT_CODE = re.compile(r"^[A-Z_]{2,20}$")


def _is_cpt(code: str) -> bool:
    return bool(_CPT.match(code))


def _is_act_code(code: str) -> bool:
    return bool(_ACT_CODE.match(code))


_CHECKS: dict[str, Callable[[str], bool]] = {
    systems.SNOMED: snomed.is_concept_id,
    systems.LOINC: loinc.is_loinc,
    systems.CPT: _is_cpt,
    systems.V3_ACT_CODE: _is_act_code,
}


class CitedCoding(Cited):
    system: str
    code: str
    display: str

    @field_validator("system", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        return SYSTEMS.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _well_formed(self) -> CitedCoding:
        check = _CHECKS.get(self.system)
        if check is None:
            raise ValueError(f"unsupported code system {self.system!r}")
        if not check(self.code):
            raise ValueError(f"{self.code!r} is not a well-formed code of {self.system}")
        return self

    @property
    def coding(self) -> Coding:
        return Coding(system=self.system, code=self.code, display=self.display)


class Concept(Frozen):
    """One map entry: a stable key, human text, and zero or more codings (zero = text only)."""

    key: str = Field(pattern=r"^[a-z0-9-]+$")
    text: str
    codings: tuple[CitedCoding, ...] = ()
    note: str | None = None

    def fhir_concept(self) -> dict[str, Any]:
        """CodeableConcept: every coding, and the entry text."""
        concept: dict[str, Any] = {"text": self.text}
        if self.codings:
            concept["coding"] = [c.coding.fhir_coding() for c in self.codings]
        return concept


class ReferralTarget(Concept):
    performer: tuple[CitedCoding, ...] = ()  # specialty of who should perform the referred service


class EncounterClass(CitedCoding):
    key: str


class VisitType(Concept):
    encounter_class: str  # key of an EncounterClass


@cache
def interventions() -> tuple[Concept, ...]:
    return _load("interventions", "entries", Concept)


def intervention(key: str) -> Concept:
    return _find(interventions(), key, "intervention")


@cache
def referral_targets() -> tuple[ReferralTarget, ...]:
    return _load("referrals", "entries", ReferralTarget)


def referral_target(key: str) -> ReferralTarget:
    return _find(referral_targets(), key, "referral target")


@cache
def note_types() -> tuple[Concept, ...]:
    return _load("note_types", "entries", Concept)


def note_type(key: str) -> Concept:
    return _find(note_types(), key, "note type")


@cache
def visit_types() -> tuple[VisitType, ...]:
    entries = _load("visit_types", "entries", VisitType)
    known = {c.key for c in encounter_classes()}
    for entry in entries:
        if entry.encounter_class not in known:
            message = f"visit type {entry.key}: unknown encounter class {entry.encounter_class!r}"
            raise TerminologyError(message)
    return entries


def visit_type(key: str) -> VisitType:
    return _find(visit_types(), key, "visit type")


@cache
def encounter_classes() -> tuple[EncounterClass, ...]:
    return _load("visit_types", "classes", EncounterClass)


def encounter_class(key: str) -> EncounterClass:
    found = next((c for c in encounter_classes() if c.key == key), None)
    if found is None:
        raise TerminologyError(f"unknown encounter class {key!r}")
    return found


T = TypeVar("T", bound=Frozen)


def _find(entries: tuple[T, ...], key: str, what: str) -> T:
    found = next((e for e in entries if getattr(e, "key", None) == key), None)
    if found is None:
        known = ", ".join(str(getattr(e, "key", "")) for e in entries)
        raise TerminologyError(f"unknown {what} {key!r} (known: {known})")
    return found


@cache
def _read(name: str) -> dict[str, Any]:
    text = resources.files(_PACKAGE).joinpath(_FOLDER, f"{name}.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise TerminologyError(f"{_PACKAGE}/{_FOLDER}/{name}.yaml: not a mapping")
    return raw


def _load(name: str, section: str, model: type[T]) -> tuple[T, ...]:
    location = f"{_PACKAGE}/{_FOLDER}/{name}.yaml"
    raw = _read(name).get(section) or []
    try:
        entries = tuple(model.model_validate(e) for e in raw)
    except ValidationError as exc:
        problems = [
            Problem(err["msg"], location=location, field=".".join(map(str, err["loc"])) or None) for err in exc.errors()
        ]
        raise TerminologyError(f"{location}: invalid {section}", problems) from exc
    keys = [getattr(e, "key", None) for e in entries]
    if len(set(keys)) != len(keys):
        raise TerminologyError(f"{location}: duplicate keys in {section}")
    return entries
