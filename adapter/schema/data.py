"""The validator's policy data: required bindings and the resource types it knows (YAML beside this module)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class ValueSet:
    name: str
    source: str  # the FHIR R4 page the codes were taken from
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConceptBinding:
    """A required binding on a CodeableConcept: codings in ``system`` must use a code of ``value_set``."""

    value_set: ValueSet
    system: str


def _load(name: str) -> Any:
    text = resources.files("adapter.schema").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def value_sets() -> dict[str, ValueSet]:
    raw = _load("required_bindings.yaml")["value_sets"]
    return {name: ValueSet(name, entry["source"], tuple(str(c) for c in entry["codes"])) for name, entry in raw.items()}


@cache
def code_bindings() -> dict[str, ValueSet]:
    """FHIR path of a code element (e.g. "CarePlan.activity.detail.status") -> its required value set."""
    sets = value_sets()
    return {path: sets[name] for path, name in _load("required_bindings.yaml")["bindings"].items()}


@cache
def concept_bindings() -> dict[str, ConceptBinding]:
    """FHIR path of a CodeableConcept element -> its required value set and code system."""
    sets = value_sets()
    raw = _load("required_bindings.yaml")["concept_bindings"]
    return {path: ConceptBinding(sets[entry["value_set"]], entry["system"]) for path, entry in raw.items()}


@cache
def resource_types() -> tuple[str, ...]:
    """Resource types the validator compiles: the emitted ones first, then the usual contained ones."""
    raw = _load("resource_types.yaml")
    return tuple(raw["emitted"]) + tuple(raw["containable"])
