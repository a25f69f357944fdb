"""Step 1, label (pure): security labels from codes, from the source, and from what a resource reveals.

- Sensitivity (v3-ActCode SUD/ETHUD/OPIOIDUD, MH/PSY, PSYTHPN, HIV, SDV) from every Coding of the resource
  (valueCoding and QuestionnaireResponse answers included) against ``data/sensitivity.yaml``.
- Part 2 from the source, never from codes: a resource whose ``meta.source`` is a Part 2 program gets the policy
  ``42CFRPart2`` (and SUD: a Part 2 record reveals SUD treatment). An unknown source is treated as Part 2.
- Propagation: a resource that references a labeled resource through a revealing element
  (``data/propagation.yaml``) inherits its sensitivity and Part 2 status, until nothing changes.
- Confidentiality: R for sensitive or Part 2 data, N for other patient data (DS4P).
- Labels already present are kept as they are; ETH on input is read as SUD.
- Notes: a psychotherapy note or SUD counseling note is one by the adapter's own DocumentReference.type code, or
  by its labels (PSYTHPN or HIPAAPsyNotes in meta.security on input, e.g. from a partner): ``note_kind`` is set
  and the notes rule of decide applies. THO has no label for SUD counseling notes: PSYTHPN on a Part 2 record
  (without HIPAAPsyNotes) is one.

Output resources are shallow rebuilds: the input Bundle, its resources and their shared sub-objects are never
modified. A resource that needs no new label is returned as the same object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from adapter.consent import graph as graph_mod
from adapter.consent.graph import Graph, Node
from adapter.consent.sources import ProgramFacts, SourceIndex
from adapter.consent.valuesets import value_sets
from adapter.consent.vocab import (
    DS4P_BASIS,
    PART2,
    RULES_SYSTEM,
    V3_ACT_CODE,
    V3_CONFIDENTIALITY,
    load_yaml,
    vocabulary,
)
from adapter.fhir import Resource
from adapter.mappings.profiles import ADAPTER_CODES
from adapter.schema import validator

NOTE_KINDS = ("psychotherapy-note", "sud-counseling-note")
PSYCHOTHERAPY_NOTES_POLICY = "HIPAAPsyNotes"
# Sensitivity that belongs to the note itself and does not flow to resources that merely point at it.
_NOT_PROPAGATED = frozenset({"PSYTHPN"})


@dataclass(frozen=True)
class Basis:
    """Why a label was set: a rule id of data/rules.yaml and a detail (value-set entry, path, source)."""

    rule: str
    detail: str = ""


@dataclass(frozen=True)
class ResourceLabels:
    key: str
    sensitivity: frozenset[str] = frozenset()  # normalized v3-ActCode sensitivity codes
    policies: frozenset[str] = frozenset()  # 42CFRPart2, HIPAAPsyNotes
    confidentiality: str | None = None  # highest confidentiality code
    note_kind: str | None = None  # psychotherapy-note | sud-counseling-note
    basis: tuple[tuple[str, Basis], ...] = ()  # (label code, basis), every reason for every label

    @property
    def part2(self) -> bool:
        return PART2 in self.policies

    @property
    def codes(self) -> frozenset[str]:
        """Every label code a provision's securityLabel is compared with."""
        conf = frozenset({self.confidentiality}) if self.confidentiality else frozenset()
        return self.sensitivity | self.policies | conf

    def first_basis(self, code: str) -> Basis | None:
        return next((b for c, b in self.basis if c == code), None)


@dataclass(frozen=True)
class LabeledBundle:
    """The input Bundle, its graph, the labels per entry key and the labeled resources (shallow rebuilds)."""

    bundle: Mapping[str, Any]
    graph: Graph
    sources: SourceIndex
    labels: Mapping[str, ResourceLabels]
    resources: Mapping[str, Resource] = field(repr=False)  # key -> labeled resource

    def resource(self, key: str) -> Resource:
        return self.resources[key]


@dataclass
class _Draft:
    sensitivity: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    confidentiality: set[str] = field(default_factory=set)
    note_kind: str | None = None
    basis: list[tuple[str, Basis]] = field(default_factory=list)

    def add(self, codes: Iterable[str], kind: str, basis: Basis) -> bool:
        target = {"sensitivity": self.sensitivity, "policy": self.policies, "confidentiality": self.confidentiality}
        changed = False
        for code in codes:
            if code not in target[kind]:
                target[kind].add(code)
                changed = True
            if (code, basis) not in self.basis:
                self.basis.append((code, basis))
        return changed


@cache
def _propagation() -> tuple[tuple[str, ...], tuple[str, ...]]:
    raw = load_yaml("propagation.yaml")
    return (
        tuple(str(p["path"]) for p in raw["propagate"]),
        tuple(str(p["path"]) for p in raw["sud_program_references"]),
    )


def label(bundle: Mapping[str, Any], external_sources: Iterable[ProgramFacts] = ()) -> LabeledBundle:
    """Label every entry of a Bundle. Pure: the same Bundle and sources give the same labels and resources."""
    graph = graph_mod.build(bundle)
    sources = SourceIndex.from_bundle(bundle, external_sources)
    drafts = {node.key: _direct(node, sources) for node in graph if not node.is_directory}
    _propagate(graph, drafts)
    labels = {key: _finish(key, draft) for key, draft in drafts.items()}
    resources = {node.key: _apply(node.resource, labels.get(node.key)) for node in graph}
    return LabeledBundle(bundle, graph, sources, labels, resources)


def _existing(node: Node, draft: _Draft) -> None:
    vocab = vocabulary()
    basis = Basis("LBL-EXISTING", "meta.security on input")
    for coding in (node.resource.get("meta") or {}).get("security") or ():
        system = vocab.canonical_system(str(coding.get("system")))
        code = str(coding.get("code"))
        if system == V3_ACT_CODE and vocab.is_sensitivity(code):
            draft.add([vocab.normalize_sensitivity(code)], "sensitivity", basis)
        elif system == V3_ACT_CODE and code in vocab.policy_display:
            draft.add([code], "policy", basis)
        elif system == V3_CONFIDENTIALITY and code in vocab.confidentiality_order:
            draft.add([code], "confidentiality", basis)


def _direct(node: Node, sources: SourceIndex) -> _Draft:
    draft = _Draft()
    _existing(node, draft)
    vocab = vocabulary()
    sets = value_sets()
    for coding in node.codings:
        system = vocab.canonical_system(coding.system)
        entry = sets.match(system, coding.code)
        if entry is not None and entry.labels:
            draft.add(entry.labels, "sensitivity", Basis(entry.rule, f"{entry.id} at {coding.path}"))
        if system == ADAPTER_CODES and coding.code in NOTE_KINDS and coding.path == "DocumentReference.type.coding":
            draft.note_kind = coding.code
            if coding.code == "psychotherapy-note":
                draft.add([PSYCHOTHERAPY_NOTES_POLICY], "policy", Basis("LBL-CODE", f"{coding.code} at {coding.path}"))
    questionnaire = node.resource.get("questionnaire")
    if isinstance(questionnaire, str):
        entry = sets.match_questionnaire(questionnaire)
        if entry is not None:
            draft.add(
                entry.labels, "sensitivity", Basis(entry.rule, f"{entry.id} at {node.resource_type}.questionnaire")
            )
    _source(node, sources, draft)
    _sud_program_references(node, sources, draft)
    return draft


def _source(node: Node, sources: SourceIndex, draft: _Draft) -> None:
    source = (node.resource.get("meta") or {}).get("source")
    if isinstance(source, str):
        facts = sources.facts(source)
        if facts is not None and not facts.part2:
            return
        rule = "LBL-PART2-SOURCE" if facts is not None else "LBL-UNKNOWN-SOURCE"
    elif node.resource_type == "Provenance":
        return  # the batch Provenance describes the export itself; its targets are redacted, not its source
    else:
        rule, source = "LBL-UNKNOWN-SOURCE", "no meta.source"
    draft.add([PART2], "policy", Basis(rule, source))
    draft.add(["SUD"], "sensitivity", Basis("LBL-PART2-SUD", source))


@lru_cache(maxsize=1 << 12)
def _on_paths(kind: int, path: str) -> bool:
    """Does an element path match one of the propagation paths (kind 0) or the SUD-program paths (kind 1)?"""
    return any(graph_mod.path_matches(p, path) for p in _propagation()[kind])


def _sud_program_references(node: Node, sources: SourceIndex, draft: _Draft) -> None:
    for ref in node.references:
        if ref.target and _on_paths(1, ref.path) and sources.is_part2_reference(ref.target):
            draft.add(["SUD"], "sensitivity", Basis("LBL-SUD-PROGRAM-REFERENCE", f"{ref.target} at {ref.path}"))


def _propagate(graph: Graph, drafts: dict[str, _Draft]) -> None:
    """Copy labels along revealing references until a fixpoint (chains: Task -> ServiceRequest -> Condition)."""
    edges = [
        (node.key, ref.target, ref.path)
        for node in graph
        if node.key in drafts
        for ref in node.references
        if ref.target in drafts and ref.target != node.key and _on_paths(0, ref.path)
    ]
    changed = True
    while changed:
        changed = False
        for source_key, target_key, path in edges:
            target = drafts[target_key]
            basis = Basis("LBL-PROPAGATED", f"{target_key} via {path}")
            draft = drafts[source_key]
            if draft.add(sorted(target.sensitivity - _NOT_PROPAGATED), "sensitivity", basis):
                changed = True
            if PART2 in target.policies and draft.add([PART2], "policy", basis):
                changed = True


def _note_kind(draft: _Draft) -> str | None:
    """The adapter's note type, else what the labels say: PSYTHPN or HIPAAPsyNotes make a note (a Part 2 record
    labeled PSYTHPN without HIPAAPsyNotes is an SUD counseling note), labeled PSYTHPN (and HIPAAPsyNotes for a
    psychotherapy note) like the adapter's own."""
    if draft.note_kind is not None:
        return draft.note_kind
    if "PSYTHPN" not in draft.sensitivity and PSYCHOTHERAPY_NOTES_POLICY not in draft.policies:
        return None
    counseling = PART2 in draft.policies and PSYCHOTHERAPY_NOTES_POLICY not in draft.policies
    kind = "sud-counseling-note" if counseling else "psychotherapy-note"
    basis = Basis("LBL-NOTE-LABEL", kind)
    if "PSYTHPN" not in draft.sensitivity:
        draft.add(["PSYTHPN"], "sensitivity", basis)
    if not counseling and PSYCHOTHERAPY_NOTES_POLICY not in draft.policies:
        draft.add([PSYCHOTHERAPY_NOTES_POLICY], "policy", basis)
    return kind


def _finish(key: str, draft: _Draft) -> ResourceLabels:
    vocab = vocabulary()
    note_kind = _note_kind(draft)
    sensitive = bool(draft.sensitivity or draft.policies)
    level = "R" if sensitive else "N"
    draft.add([level], "confidentiality", Basis("LBL-CONFIDENTIALITY", "sensitive or Part 2" if sensitive else "PHI"))
    return ResourceLabels(
        key=key,
        sensitivity=frozenset(draft.sensitivity),
        policies=frozenset(draft.policies),
        confidentiality=vocab.highest_confidentiality(draft.confidentiality),
        note_kind=note_kind,
        basis=tuple(draft.basis),
    )


def security_coding(system: str, code: str, display: str | None, basis: Basis | None) -> dict[str, Any]:
    """A meta.security Coding; its DS4P sec-label-basis extension names the engine rule that set it.

    The same arguments give the same object, built and validated once: like every released value it is shared
    and never edited in place, and the release point knows it valid (:func:`is_generated_coding`) without
    validating it again in every resource it labels."""
    return _security_coding(system, code, display, basis.rule if basis is not None else None)


@cache
def _security_coding(system: str, code: str, display: str | None, rule: str | None) -> dict[str, Any]:
    coding: dict[str, Any] = {}
    if rule is not None:
        coding["extension"] = [{"url": DS4P_BASIS, "valueCoding": {"system": RULES_SYSTEM, "code": rule}}]
    coding["system"] = system
    coding["code"] = code
    if display:
        coding["display"] = display
    validator.validate_datatype("Coding", coding)  # a defect in the vocabulary, raised where it is made
    _GENERATED[id(coding)] = coding  # kept alive by the cache: the id stays this object's
    return coding


_GENERATED: dict[int, dict[str, Any]] = {}


def is_generated_coding(coding: Any) -> bool:
    """Is this object one of the engine's own, already validated security codings?"""
    return _GENERATED.get(id(coding)) is coding


def label_codings(labels: ResourceLabels) -> list[dict[str, Any]]:
    """The meta.security codings the labels stand for, in a stable order."""
    vocab = vocabulary()
    out = [
        security_coding(V3_ACT_CODE, c, vocab.sensitivity_display.get(c), labels.first_basis(c))
        for c in sorted(labels.sensitivity)
    ]
    out += [
        security_coding(V3_ACT_CODE, c, vocab.policy_display.get(c), labels.first_basis(c))
        for c in sorted(labels.policies)
    ]
    if labels.confidentiality:
        c = labels.confidentiality
        out.append(security_coding(V3_CONFIDENTIALITY, c, vocab.confidentiality_display.get(c), labels.first_basis(c)))
    return out


def with_security(resource: Resource, codings: list[dict[str, Any]]) -> Resource:
    """A shallow rebuild of `resource` whose meta.security also has `codings` (those not already present).
    Present labels are never removed or changed; `meta` goes right after `id`, where FHIR lists it."""
    vocab = vocabulary()
    meta = resource.get("meta") or {}
    present = list(meta.get("security") or ())
    seen = {(vocab.canonical_system(str(c.get("system"))), c.get("code")) for c in present}
    new = [c for c in codings if (c["system"], c["code"]) not in seen]
    if not new:
        return resource
    new_meta = {**meta, "security": present + new}
    if "meta" in resource:
        return {k: (new_meta if k == "meta" else v) for k, v in resource.items()}
    head = {k: resource[k] for k in ("resourceType", "id") if k in resource}
    return head | {"meta": new_meta} | {k: v for k, v in resource.items() if k not in head}


def _apply(resource: Resource, labels: ResourceLabels | None) -> Resource:
    if labels is None:
        return resource
    return with_security(resource, label_codings(labels))
