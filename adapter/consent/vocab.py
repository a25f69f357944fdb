"""The engine's vocabulary, read once from ``data/vocabulary.yaml`` and ``data/rules.yaml``.

Code-system aliases, the v3-ActCode sensitivity hierarchy, the confidentiality order, the v3-ActReason purpose of
use hierarchy and the rule ids. Everything here is data with a source; the functions only answer questions about
it (is-a, covers, rank).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from adapter.errors import Problem, TerminologyError

_PACKAGE = "adapter.consent.data"

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
DS4P_BASIS = "http://hl7.org/fhir/uv/security-label-ds4p/StructureDefinition/extension-sec-label-basis"
RULES_SYSTEM = "https://bh-fhir-adapter.dev/fhir/CodeSystem/consent-rules"
PART2 = "42CFRPart2"
ROOT_PURPOSE = "PurposeOfUse"


def load_yaml(filename: str) -> dict[str, Any]:
    """A data file of this package as a mapping (importlib.resources: works from a wheel too)."""
    text = resources.files(_PACKAGE).joinpath(filename).read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        location = f"{_PACKAGE}/{filename}"
        raise TerminologyError(f"{location}: not a mapping", [Problem("not a mapping", location=location)])
    return raw


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    basis: str


@dataclass(frozen=True)
class Vocabulary:
    system_alias: dict[str, str]  # any accepted spelling -> canonical URI
    system_uri: dict[str, str]  # short name in data files -> canonical URI
    sensitivity_parent: dict[str, str | None]
    sensitivity_display: dict[str, str]
    aliases: dict[str, str]  # ETH -> SUD
    deny_umbrellas: dict[str, frozenset[str]]
    policy_display: dict[str, str]
    confidentiality_order: tuple[str, ...]
    confidentiality_display: dict[str, str]
    refrain_display: dict[str, str]
    mark_display: dict[str, str]
    purpose_parent: dict[str, str]
    never_by_subsumption: frozenset[str]
    tpo: tuple[str, ...]
    consent_action_system: str
    disclosure_actions: frozenset[str]
    recipient_role_system: str
    recipient_roles: frozenset[str]
    legal_representative: tuple[str, str]
    age_of_majority: int

    # --- systems ----------------------------------------------------------------------------------------
    def canonical_system(self, system: str) -> str:
        return self.system_alias.get(system, system)

    # --- sensitivity ------------------------------------------------------------------------------------
    def normalize_sensitivity(self, code: str) -> str:
        return self.aliases.get(code, code)

    def sensitivity_lineage(self, code: str) -> tuple[str, ...]:
        """The code and its THO ancestors ("OPIOIDUD" -> ("OPIOIDUD", "SUD", "SPI"))."""
        out = [self.normalize_sensitivity(code)]
        while (parent := self.sensitivity_parent.get(out[-1])) and parent not in out:
            out.append(parent)
        return tuple(out)

    def is_sensitivity(self, code: str) -> bool:
        return self.normalize_sensitivity(code) in self.sensitivity_parent

    def label_covers(self, granted: str, labels: frozenset[str], *, permit: bool) -> bool:
        """Does a provision's securityLabel code cover data carrying `labels` (normalized codes)?

        Sensitivity codes cover their THO descendants; a deny on an umbrella code (BH) also covers the codes the
        clinic's category means (fail closed); confidentiality codes cover the data at or below (permit) or at or
        above (deny) their level; other codes (policies) match exactly.
        """
        granted = self.normalize_sensitivity(granted)
        if granted in self.confidentiality_order:
            rank = self.confidentiality_rank(granted)
            levels = [self.confidentiality_rank(c) for c in labels if c in self.confidentiality_order]
            return any((lv <= rank) if permit else (lv >= rank) for lv in levels)
        if any(granted in self.sensitivity_lineage(label) for label in labels):
            return True
        return not permit and bool(self.deny_umbrellas.get(granted, frozenset()) & labels)

    # --- confidentiality --------------------------------------------------------------------------------
    def confidentiality_rank(self, code: str) -> int:
        return self.confidentiality_order.index(code)

    def highest_confidentiality(self, codes: list[str] | set[str] | frozenset[str]) -> str | None:
        known = [c for c in codes if c in self.confidentiality_order]
        return max(known, key=self.confidentiality_rank) if known else None

    # --- purpose of use ---------------------------------------------------------------------------------
    def is_purpose(self, code: str) -> bool:
        return code in self.purpose_parent

    def purpose_lineage(self, code: str) -> tuple[str, ...]:
        """The purpose and its ancestors up to (not including) the PurposeOfUse root."""
        out = [code]
        while (parent := self.purpose_parent.get(out[-1])) and parent != ROOT_PURPOSE and parent not in out:
            out.append(parent)
        return tuple(out)

    def purpose_covers(self, granted: str, requested: str, *, permit: bool) -> bool:
        """Does a consent purpose cover the request's purpose? Descendants are covered (ETREAT under TREAT),
        except that a permit reaches a never-by-subsumption purpose (HLEGAL) only when it names it. A deny
        covers by subsumption without exception (fail closed)."""
        if granted == requested:
            return True
        if permit and requested in self.never_by_subsumption:
            return False
        return granted in self.purpose_lineage(requested)

    def in_purpose_subtree(self, requested: str, root: str) -> bool:
        return root in self.purpose_lineage(requested)

    def is_tpo(self, requested: str) -> bool:
        """Treatment, payment or operations, never HLEGAL (HIPAA 164.512(e) is not operations)."""
        if requested in self.never_by_subsumption:
            return False
        return any(self.in_purpose_subtree(requested, root) for root in self.tpo)


def _systems(raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    alias: dict[str, str] = {}
    short: dict[str, str] = {}
    for name, entry in raw.items():
        uri = entry["uri"]
        short[name] = uri
        alias[uri] = uri
        for other in entry.get("aliases") or []:
            alias[other] = uri
    return alias, short


@cache
def vocabulary() -> Vocabulary:
    raw = load_yaml("vocabulary.yaml")
    alias, short = _systems(raw["systems"])
    sens = raw["sensitivity"]
    purposes = raw["purposes"]
    parent = dict(purposes["parent"])
    unknown = sorted({p for p in parent.values() if p != ROOT_PURPOSE and p not in parent})
    if unknown:
        raise TerminologyError(f"consent vocabulary: purposes with unknown parents: {unknown}")
    conf = raw["confidentiality"]
    legal = raw["legal_representative"]
    return Vocabulary(
        system_alias=alias,
        system_uri=short,
        sensitivity_parent={code: entry.get("parent") for code, entry in sens.items()},
        sensitivity_display={code: entry["display"] for code, entry in sens.items()},
        aliases={code: entry["means"] for code, entry in raw["aliases"].items()},
        deny_umbrellas={code: frozenset(entry["covers"]) for code, entry in raw["deny_umbrellas"].items()},
        policy_display={code: entry["display"] for code, entry in raw["policies"].items()},
        confidentiality_order=tuple(conf["order"]),
        confidentiality_display=dict(conf["display"]),
        refrain_display={code: entry["display"] for code, entry in raw["refrains"].items()},
        mark_display={code: entry["display"] for code, entry in raw["marks"].items()},
        purpose_parent=parent,
        never_by_subsumption=frozenset(purposes["never_by_subsumption"]),
        tpo=tuple(purposes["tpo"]),
        consent_action_system=raw["consent_actions"]["system"],
        disclosure_actions=frozenset(raw["consent_actions"]["disclosure"]),
        recipient_role_system=raw["recipient_roles"]["system"],
        recipient_roles=frozenset(raw["recipient_roles"]["codes"]),
        legal_representative=(legal["system"], legal["code"]),
        age_of_majority=int(raw["age_of_majority"]["years"]),
    )


@cache
def rules() -> dict[str, Rule]:
    raw = load_yaml("rules.yaml")["rules"]
    return {rule_id: Rule(rule_id, entry["title"], entry["basis"]) for rule_id, entry in raw.items()}


def rule(rule_id: str) -> Rule:
    """The rule with this id; an unknown id is a defect in the engine (every reason must be documented)."""
    found = rules().get(rule_id)
    if found is None:
        raise KeyError(f"rule {rule_id!r} is not in adapter/consent/data/rules.yaml")
    return found
