"""FHIR R4 Consent resources as the engine reads them, and whether each is in force for a request.

A Consent's permits apply when it is active (inactive = revoked; entered-in-error ignored; draft, proposed and
rejected never permit), is a patient-privacy consent of this patient, was signed by someone who may consent for
the patient (the patient, a legal representative; minors per 42 CFR 2.14) on a known date, its root provision's
period and its signing date contain the request instant, and every part of it could be read. Part 2 and HIPAA
data differ only for minors (2.14(c)), so the assessment gives one answer for each.

Its denies apply whenever it is active, of this patient, privacy-scoped and not expired or not yet valid: a
consent whose permits cannot be relied on (no signing date, no valid signer, a malformed part) still withholds
what it denies (fail closed). :func:`standing` gives both answers.

Reading never raises on malformed input: a part of the wrong shape is recorded in ``malformed`` (its path), and
a provision attribute that could not be read is tested as "cannot tell" (a permit does not apply, a deny does).
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
PROVISION_TYPES = ("permit", "deny")


@dataclass(frozen=True)
class Actor:
    roles: frozenset[Code]
    reference: Mapping[str, Any]


@dataclass(frozen=True)
class Provision:
    """One node of the provision tree; `path` locates it ("provision", "provision.provision[0]").

    `malformed` names the attributes (as :func:`adapter.consent.provisions.matches` tests them: "period",
    "actor", "securityLabel" ...) that were present but could not be read; they are tested as "cannot tell"."""

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
    malformed: frozenset[str] = frozenset()

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
    malformed: tuple[str, ...] = ()  # paths of the parts that could not be read ("provision.period")


@dataclass(frozen=True)
class Standing:
    """What of a consent applies at the request instant: its permits (`assessment.in_force_part2`,
    `assessment.in_force_hipaa`) and its denies (`denies`: true whenever a permit is in force, and also when the
    consent could not be relied on to permit but is live: fail closed)."""

    assessment: ConsentAssessment
    denies: bool


def _is_code(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _items(value: Any, path: str, problems: list[str]) -> list[Mapping[str, Any]]:
    """The objects of a FHIR list element; anything else present is recorded as malformed and left out."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(path)
        return []
    out = [item for item in value if isinstance(item, Mapping)]
    if len(out) != len(value):
        problems.append(path)
    return out


def _coding(coding: Any) -> tuple[Code, ...]:
    if not isinstance(coding, Mapping) or coding.get("code") is None:
        return ()
    return ((vocabulary().canonical_system(str(coding.get("system"))), str(coding["code"])),)


def _codings(concept: Any) -> tuple[Code, ...]:
    if not isinstance(concept, Mapping) or not isinstance(concept.get("coding") or [], list):
        return ()
    return tuple(c for coding in concept.get("coding") or () for c in _coding(coding))


def _well_formed_coding(coding: Mapping[str, Any]) -> bool:
    system = coding.get("system")
    return _is_code(coding.get("code")) and (system is None or isinstance(system, str))


def _well_formed_concept(concept: Mapping[str, Any]) -> bool:
    codings = concept.get("coding")
    if codings is None:
        return True
    return isinstance(codings, list) and all(isinstance(c, Mapping) and _well_formed_coding(c) for c in codings)


def _period(value: Any) -> Mapping[str, Any] | bool | None:
    """A readable FHIR Period, None when absent, False when present but unreadable."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return False
    for bound in ("start", "end"):
        if value.get(bound) is not None and timing.parse(value.get(bound)) is None:
            return False
    return value


def _unreadable(path: str) -> Provision:
    """A provision that is not an object: untyped and unconstrained, so a deny of everything in its parent's scope
    (a provision without a type is a deny; what it says cannot be read: fail closed)."""
    return Provision(path, None, None, (), (), (), (), (), (), None, (), ())


def _provision(raw: Mapping[str, Any], path: str, problems: list[str]) -> Provision:
    bad: set[str] = set()

    def items(name: str) -> list[Mapping[str, Any]]:
        found: list[str] = []
        out = _items(raw.get(name), f"{path}.{name}", found)
        if found:
            bad.add(name)
        return out

    nested = raw.get("provision")
    if nested is not None and not isinstance(nested, list):
        nested = [nested]
        bad.add("provision")
    children = tuple(
        _provision(child, f"{path}.provision[{i}]", problems)
        if isinstance(child, Mapping)
        else _unreadable(f"{path}.provision[{i}]")
        for i, child in enumerate(nested or ())
    )
    if any(not isinstance(child, Mapping) for child in nested or ()):
        bad.add("provision")
    kind = raw.get("type")
    if kind is not None and kind not in PROVISION_TYPES:
        bad.add("type")
    periods = {}
    for name in ("period", "dataPeriod"):
        value = _period(raw.get(name))
        if value is False:
            bad.add(name)
        periods[name] = value if isinstance(value, Mapping) else None
    actors = []
    for actor in items("actor"):
        role, reference = actor.get("role"), actor.get("reference")
        if not isinstance(role, Mapping) or not _well_formed_concept(role) or not isinstance(reference, Mapping):
            bad.add("actor")
            continue
        actors.append(Actor(frozenset(_codings(role)), reference))
    concepts = {}
    for name in ("action", "code"):
        found = items(name)
        if not all(_well_formed_concept(c) for c in found):
            bad.add(name)
        concepts[name] = tuple(c for concept in found for c in _codings(concept))
    codings = {}
    for name in ("purpose", "securityLabel", "class"):
        found = items(name)
        if not all(_well_formed_coding(c) for c in found):
            bad.add(name)
        codings[name] = tuple(c for coding in found for c in _coding(coding))
    data = []
    for item in items("data"):
        reference = item.get("reference")
        text = reference.get("reference") if isinstance(reference, Mapping) else None
        if not _is_code(item.get("meaning")) or not isinstance(reference, Mapping) or not isinstance(text, str | None):
            bad.add("data")
            continue
        data.append((str(item["meaning"]), text or ""))
    problems += [f"{path}.{name}" for name in sorted(bad)]
    return Provision(
        path=path,
        type=kind if isinstance(kind, str) else None,
        period=periods["period"],
        actors=tuple(actors),
        actions=concepts["action"],
        purposes=codings["purpose"],
        security_labels=codings["securityLabel"],
        classes=codings["class"],
        codes=concepts["code"],
        data_period=periods["dataPeriod"],
        data=tuple(data),
        children=children,
        malformed=frozenset(bad - {"provision"}),
    )


def _ref(resource: Mapping[str, Any]) -> ConsentRef:
    identifiers = resource.get("identifier") or []
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    identifier = f"{first.get('system')}|{first.get('value')}" if isinstance(first, Mapping) else None
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    return ConsentRef(str(resource.get("id")), str(version) if version else None, identifier)


def _reference_key(value: Any, urls: Mapping[str, str]) -> str | None:
    text = value.get("reference") if isinstance(value, Mapping) else None
    return reference_key(text, urls) if isinstance(text, str) else None


def parse_consent(resource: Mapping[str, Any], by_full_url: Mapping[str, str] | None = None) -> ConsentView:
    """The engine's reading of a Consent. Never raises: parts of the wrong shape are listed in `malformed`."""
    urls = by_full_url or {}
    problems: list[str] = []
    status, scope = resource.get("status"), resource.get("scope")
    if status is not None and not isinstance(status, str):
        problems.append("status")
    if scope is not None and (not isinstance(scope, Mapping) or not _well_formed_concept(scope)):
        problems.append("scope")
    policy_rule_concept = resource.get("policyRule")
    if policy_rule_concept is not None and (
        not isinstance(policy_rule_concept, Mapping) or not _well_formed_concept(policy_rule_concept)
    ):
        problems.append("policyRule")
    policy_rule = _codings(policy_rule_concept)
    policies = [str(p.get("uri") or "") for p in _items(resource.get("policy"), "policy", problems)]
    part2 = (V3_ACT_CODE, PART2) in policy_rule or any(PART2.lower() in p.lower() for p in policies)
    patient = resource.get("patient")
    if patient is not None and not isinstance(patient, Mapping):
        problems.append("patient")
    performers = _items(resource.get("performer"), "performer", problems)
    signed = resource.get("dateTime")  # an unreadable signing date is an unknown one (CNS-UNDATED)
    provision = resource.get("provision")
    root = None
    if isinstance(provision, Mapping):
        root = _provision(provision, "provision", problems)
    elif provision is not None:
        problems.append("provision")
        root = _unreadable("provision")
    return ConsentView(
        key=f"Consent/{resource.get('id')}",
        ref=_ref(resource),
        status=str(status),
        scopes=frozenset(_codings(scope)),
        patient=_reference_key(patient, urls),
        performers=tuple(_reference_key(p, urls) for p in performers),
        part2=part2,
        signed=signed if isinstance(signed, str) else None,
        root=root,
        malformed=tuple(problems),
    )


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def patient_age(graph: Graph, request: DisclosureRequest) -> int | None:
    patient = graph.patient()
    birth = timing.parse((patient.resource if patient else {}).get("birthDate"))
    if birth is None or birth.first is None:
        return None
    return age_on(birth.first, request.local_instant.date())


def _signers(view: ConsentView, graph: Graph) -> tuple[bool, bool]:
    """(signed by the patient, signed by a legal representative).

    R4 Consent.performer is "either the Grantor ... or the Grantee": an organization or practitioner listed there
    (the clinic that received the consent) is a grantee, not a signer, and like any other performer it neither
    signs for the patient nor makes the consent invalid. The signer is looked for among the performers."""
    vocab = vocabulary()
    patient = graph.patient()
    by_patient = by_rep = False
    for key in view.performers:
        node = graph.get(key)
        if patient is not None and key == patient.key:
            by_patient = True
        elif (
            node is not None
            and node.resource_type == "RelatedPerson"
            and any(vocab.legal_representative in _codings(rel) for rel in _list(node.resource.get("relationship")))
        ):
            by_rep = True
    return by_patient, by_rep


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def assess(view: ConsentView, request: DisclosureRequest, graph: Graph) -> ConsentAssessment:
    """Is the consent in force at the request instant (for Part 2 data, for HIPAA data), and why (not)."""
    return standing(view, request, graph).assessment


def standing(view: ConsentView, request: DisclosureRequest, graph: Graph) -> Standing:
    """Whether the consent's permits (for Part 2 data, for HIPAA data) and its denies apply at the request
    instant, and why (not)."""
    reasons: list[Reason] = []
    ref = view.ref

    def out(part2: bool, hipaa: bool, denies: bool) -> Standing:
        if denies and not (part2 or hipaa):
            reasons.append(Reason("CNS-DENIES-ONLY", ref))
        return Standing(ConsentAssessment(ref, part2, hipaa, tuple(reasons)), denies)

    if view.status == "entered-in-error":
        reasons.append(Reason("CNS-ENTERED-IN-ERROR", ref))
        return out(False, False, False)
    # What cannot be read cannot show the consent is revoked, of another kind or of another patient: its denies
    # apply (CNS-MALFORMED below).
    unreadable = set(view.malformed)
    if view.status != "active" and "status" not in unreadable:
        reasons.append(Reason("CNS-NOT-ACTIVE", ref, f"status {view.status}"))
        return out(False, False, False)
    if PATIENT_PRIVACY not in view.scopes and "scope" not in unreadable:
        reasons.append(Reason("CNS-SCOPE", ref))
        return out(False, False, False)
    patient = graph.patient()
    if (patient is None or view.patient != patient.key) and "patient" not in unreadable:
        reasons.append(Reason("CNS-OTHER-PATIENT", ref))
        return out(False, False, False)
    instant = timing.Moment(instant=request.local_instant)
    signed = timing.parse(view.signed)
    period = view.root.period if view.root else None
    if (signed is not None and not timing.on_or_before(signed, instant)) or (
        period is not None and timing.before_start(instant, period)
    ):
        reasons.append(Reason("CNS-NOT-YET-VALID", ref))
        return out(False, False, False)
    if period is not None and timing.within(instant, period) is not True:
        reasons.append(Reason("CNS-EXPIRED", ref, f"period ends {period.get('end')}"))
        return out(False, False, False)
    # Live: its denies apply from here on. Its permits need a readable, dated consent by a valid signer.
    relied = True
    if view.malformed:
        reasons.append(Reason("CNS-MALFORMED", ref, ", ".join(view.malformed)))
        relied = False
    if signed is None:
        # 42 CFR 2.31(a)(9) and 45 CFR 164.508(c)(1)(vi): a consent or authorization is dated; an unknown signing
        # date cannot show it was signed on or before the disclosure.
        reasons.append(Reason("CNS-UNDATED", ref, "no signing date" if view.signed is None else "unreadable date"))
        relied = False
    by_patient, by_rep = _signers(view, graph)
    if not (by_patient or by_rep):
        reasons.append(Reason("CNS-INVALID-SIGNER", ref))
        relied = False
    if not relied:
        return out(False, False, True)
    age = patient_age(graph, request)
    minor = age is None or age < vocabulary().age_of_majority  # unknown age: apply the stricter minor rules
    if minor and request.minor_may_consent_alone:
        if not by_patient:
            reasons.append(Reason("CNS-MINOR-ALONE", ref, "signed by a representative, not by the minor"))
            return out(False, False, True)
        reasons.append(Reason("CNS-IN-FORCE", ref))
        return out(True, True, True)
    if minor:
        part2_ok = by_patient and by_rep
        hipaa_ok = by_rep
        if not (part2_ok and hipaa_ok):
            reasons.append(Reason("CNS-MINOR-BOTH", ref, "Part 2: minor and parent; HIPAA: parent or guardian"))
        if part2_ok or hipaa_ok:
            reasons.append(Reason("CNS-IN-FORCE", ref))
        return out(part2_ok, hipaa_ok, True)
    reasons.append(Reason("CNS-IN-FORCE", ref))
    return out(True, True, True)
