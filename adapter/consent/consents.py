"""FHIR R4 Consent resources as the engine reads them, and whether each is in force for a request.

A Consent is in force when it is active (inactive = revoked; entered-in-error ignored; draft, proposed and
rejected never permit), is a patient-privacy consent of this patient, was signed by someone who may consent for
the patient (the patient, a legal representative; minors per 42 CFR 2.14), and its root provision's period and
its signing date contain the request instant. Part 2 and HIPAA data differ only for minors (2.14(c)), so the
assessment gives one answer for each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapter.consent import timing
from adapter.consent.graph import Graph, reference_key
from adapter.consent.model import ConsentAssessment, ConsentRef, DisclosureRequest, Reason
from adapter.consent.vocab import PART2, V3_ACT_CODE, vocabulary

Code = tuple[str, str]  # (canonical system, code)
PATIENT_PRIVACY = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")


@dataclass(frozen=True)
class Actor:
    roles: frozenset[Code]
    reference: Mapping[str, Any]


@dataclass(frozen=True)
class Provision:
    """One node of the provision tree; `path` locates it ("provision", "provision.provision[0]")."""

    path: str
    type: str | None
    period: Mapping[str, Any] | None
    actors: tuple[Actor, ...]
    actions: tuple[Code, ...]
    purposes: tuple[Code, ...]
    security_labels: tuple[Code, ...]
    classes: tuple[Code, ...]
    codes: tuple[Code, ...]
    data_period: Mapping[str, Any] | None
    data: tuple[tuple[str, str], ...]  # (meaning, reference)
    children: tuple[Provision, ...]

    def walk(self) -> tuple[Provision, ...]:
        return (self, *(p for child in self.children for p in child.walk()))


@dataclass(frozen=True)
class ConsentView:
    key: str
    ref: ConsentRef
    status: str
    scopes: frozenset[Code]
    patient: str | None  # entry key of Consent.patient
    performers: tuple[str | None, ...]  # entry keys of Consent.performer
    part2: bool  # cites 42 CFR Part 2 (policyRule or policy)
    signed: str | None
    root: Provision | None


def _codings(concept: Any) -> tuple[Code, ...]:
    vocab = vocabulary()
    if not isinstance(concept, Mapping):
        return ()
    return tuple(
        (vocab.canonical_system(str(c.get("system"))), str(c.get("code")))
        for c in concept.get("coding") or ()
        if isinstance(c, Mapping) and c.get("code") is not None
    )


def _coding(coding: Any) -> tuple[Code, ...]:
    if not isinstance(coding, Mapping) or coding.get("code") is None:
        return ()
    return ((vocabulary().canonical_system(str(coding.get("system"))), str(coding["code"])),)


def _provision(raw: Mapping[str, Any], path: str) -> Provision:
    children = tuple(_provision(child, f"{path}.provision[{i}]") for i, child in enumerate(raw.get("provision") or ()))
    return Provision(
        path=path,
        type=raw.get("type"),
        period=raw.get("period"),
        actors=tuple(
            Actor(frozenset(_codings(a.get("role"))), a.get("reference") or {}) for a in raw.get("actor") or ()
        ),
        actions=tuple(c for concept in raw.get("action") or () for c in _codings(concept)),
        purposes=tuple(c for coding in raw.get("purpose") or () for c in _coding(coding)),
        security_labels=tuple(c for coding in raw.get("securityLabel") or () for c in _coding(coding)),
        classes=tuple(c for coding in raw.get("class") or () for c in _coding(coding)),
        codes=tuple(c for concept in raw.get("code") or () for c in _codings(concept)),
        data_period=raw.get("dataPeriod"),
        data=tuple(
            (str(d.get("meaning")), str((d.get("reference") or {}).get("reference") or ""))
            for d in raw.get("data") or ()
        ),
        children=children,
    )


def _ref(resource: Mapping[str, Any]) -> ConsentRef:
    identifiers = resource.get("identifier") or []
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    identifier = f"{first.get('system')}|{first.get('value')}" if isinstance(first, Mapping) else None
    version = (resource.get("meta") or {}).get("versionId")
    return ConsentRef(str(resource.get("id")), str(version) if version else None, identifier)


def parse_consent(resource: Mapping[str, Any], by_full_url: Mapping[str, str] | None = None) -> ConsentView:
    urls = by_full_url or {}
    policy_rule = _codings(resource.get("policyRule"))
    policies = [str(p.get("uri") or "") for p in resource.get("policy") or ()]
    part2 = (V3_ACT_CODE, PART2) in policy_rule or any(PART2.lower() in p.lower() for p in policies)
    provision = resource.get("provision")
    return ConsentView(
        key=f"Consent/{resource.get('id')}",
        ref=_ref(resource),
        status=str(resource.get("status")),
        scopes=frozenset(_codings(resource.get("scope"))),
        patient=reference_key(str((resource.get("patient") or {}).get("reference") or ""), urls),
        performers=tuple(reference_key(str(p.get("reference") or ""), urls) for p in resource.get("performer") or ()),
        part2=part2,
        signed=resource.get("dateTime"),
        root=_provision(provision, "provision") if isinstance(provision, Mapping) else None,
    )


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def patient_age(graph: Graph, request: DisclosureRequest) -> int | None:
    patient = graph.patient()
    birth = timing.parse((patient.resource if patient else {}).get("birthDate"))
    if birth is None or birth.first is None:
        return None
    return age_on(birth.first, request.local_instant.date())


def _signers(view: ConsentView, graph: Graph) -> tuple[bool, bool, bool]:
    """(signed by the patient, signed by a legal representative, signed by someone else)."""
    vocab = vocabulary()
    patient = graph.patient()
    by_patient = by_rep = by_other = False
    for key in view.performers:
        node = graph.get(key)
        if patient is not None and key == patient.key:
            by_patient = True
        elif (
            node is not None
            and node.resource_type == "RelatedPerson"
            and any(vocab.legal_representative in _codings(rel) for rel in node.resource.get("relationship") or ())
        ):
            by_rep = True
        else:
            by_other = True
    return by_patient, by_rep, by_other


def assess(view: ConsentView, request: DisclosureRequest, graph: Graph) -> ConsentAssessment:
    """Is the consent in force at the request instant (for Part 2 data, for HIPAA data), and why (not)."""
    reasons: list[Reason] = []
    ref = view.ref

    def out(part2: bool, hipaa: bool) -> ConsentAssessment:
        return ConsentAssessment(ref, part2, hipaa, tuple(reasons))

    if view.status == "entered-in-error":
        reasons.append(Reason("CNS-ENTERED-IN-ERROR", ref))
        return out(False, False)
    if view.status != "active":
        reasons.append(Reason("CNS-NOT-ACTIVE", ref, f"status {view.status}"))
        return out(False, False)
    if PATIENT_PRIVACY not in view.scopes:
        reasons.append(Reason("CNS-SCOPE", ref))
        return out(False, False)
    patient = graph.patient()
    if patient is None or view.patient != patient.key:
        reasons.append(Reason("CNS-OTHER-PATIENT", ref))
        return out(False, False)
    instant = timing.Moment(instant=request.local_instant)
    signed = timing.parse(view.signed)
    period = view.root.period if view.root else None
    if (signed is not None and not timing.on_or_before(signed, instant)) or (
        period is not None and timing.before_start(instant, period)
    ):
        reasons.append(Reason("CNS-NOT-YET-VALID", ref))
        return out(False, False)
    if period is not None and timing.within(instant, period) is not True:
        reasons.append(Reason("CNS-EXPIRED", ref, f"period ends {period.get('end')}"))
        return out(False, False)
    by_patient, by_rep, by_other = _signers(view, graph)
    if not (by_patient or by_rep) or by_other:
        reasons.append(Reason("CNS-INVALID-SIGNER", ref))
        return out(False, False)
    age = patient_age(graph, request)
    minor = age is None or age < vocabulary().age_of_majority  # unknown age: apply the stricter minor rules
    if minor and request.minor_may_consent_alone:
        if not by_patient:
            reasons.append(Reason("CNS-MINOR-ALONE", ref, "signed by a representative, not by the minor"))
            return out(False, False)
        reasons.append(Reason("CNS-IN-FORCE", ref))
        return out(True, True)
    if minor:
        part2_ok = by_patient and by_rep
        hipaa_ok = by_rep
        if not (part2_ok and hipaa_ok):
            reasons.append(Reason("CNS-MINOR-BOTH", ref, "Part 2: minor and parent; HIPAA: parent or guardian"))
        if part2_ok or hipaa_ok:
            reasons.append(Reason("CNS-IN-FORCE", ref))
        return out(part2_ok, hipaa_ok)
    reasons.append(Reason("CNS-IN-FORCE", ref))
    return out(True, True)
