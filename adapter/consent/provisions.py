"""Evaluating one consent's provision tree for one resource and one request.

Every attribute a provision states (period, actor, action, purpose, securityLabel, class, code, dataPeriod,
data) is a constraint; a provision matches when all of them hold. Each test answers yes, no or unknown (a
reference that does not resolve, a class system the engine cannot judge, undated data, an attribute that could
not be read): an unknown never lets a permit apply and always lets a deny apply (fail closed).

Within one attribute, several values combine as R4 defines them: class "Multiple types are or'ed together", code
"If this code is found in an instance, then the rule applies" (any), actor and purpose any, data any. Several
security labels are conjunctive (STU3 stated it: "If more than one label is specified, all resources must have
all the specified labels"; R4 kept the element and dropped the sentence) for a permit; a deny listing several
labels denies data carrying any of them, since a reading that narrows a client's deny fails open (the clinic's
own consent form lists denied categories this way).

Combining rule within a consent: :func:`most_specific_provision`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from adapter.consent import timing
from adapter.consent.consents import Actor, Code, ConsentView, Provision
from adapter.consent.graph import Graph, Node, reference_key
from adapter.consent.labeler import ResourceLabels
from adapter.consent.model import DisclosureRequest
from adapter.consent.vocab import V3_ACT_CODE, V3_ACT_REASON, V3_CONFIDENTIALITY, load_yaml, vocabulary
from adapter.mappings.profiles import ADAPTER_CODES, RECIPIENT_CLASS_SYSTEM
from adapter.terminology.icd10 import normalize_icd10cm

Tri = bool | None  # True, False, or None = cannot tell
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
TREATING_PROVIDERS = "treating-providers"
NOTE_CODES = frozenset({(ADAPTER_CODES, "psychotherapy-note"), (ADAPTER_CODES, "sud-counseling-note")})


@dataclass(frozen=True)
class Subject:
    """What a provision is tested against: the request, the resource (node + labels) and the Bundle."""

    request: DisclosureRequest
    node: Node
    labels: ResourceLabels
    graph: Graph


@dataclass(frozen=True)
class Verdict:
    """The outcome of a consent for one resource: permit or deny from the provision at `path`, and what the
    permitting chain of provisions named (a Part 2 permit must name the recipient and the purpose)."""

    effect: str  # "permit" | "deny"
    path: str
    names_recipient: bool
    names_purpose: bool
    names_notes: bool
    hlegal_excluded: bool = False  # a permit for HOPERAT did not reach HLEGAL


def _all(results: Iterable[Tri]) -> Tri:
    values = list(results)
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _any(results: Iterable[Tri]) -> Tri:
    values = list(results)
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _actor(actor: Actor, subject: Subject, permit: bool) -> Tri:
    vocab = vocabulary()
    if not any(s == vocab.recipient_role_system and c in vocab.recipient_roles for s, c in actor.roles):
        return None  # an author, custodian ...: not something a disclosure request can be tested against
    identifier = actor.reference.get("identifier") or {}
    if identifier.get("system") == RECIPIENT_CLASS_SYSTEM:
        if identifier.get("value") != TREATING_PROVIDERS:
            return None
        request = subject.request
        # "My treating providers" (42 CFR 2.31(a)(4)): an attested treating relationship, for treatment. A deny
        # naming the class applies to any treating provider, whatever the purpose.
        in_treat = vocab.in_purpose_subtree(request.purpose, "TREAT")
        return request.treating_relationship and (in_treat or not permit)
    identities: set[tuple[str, str]] = set()
    if identifier.get("system") and identifier.get("value"):
        identities.add((str(identifier["system"]), str(identifier["value"])))
    reference = actor.reference.get("reference")
    if isinstance(reference, str):
        node = subject.graph.get(reference_key(reference, {}))
        if node is None and not identities:
            return None
        if node is not None:
            identities |= {(str(i.get("system")), str(i.get("value"))) for i in node.resource.get("identifier") or ()}
    if not identities:
        return None
    return bool(identities & subject.request.recipient_identifiers)


def _action(codes: tuple[Code, ...]) -> Tri:
    vocab = vocabulary()
    return any(s == vocab.consent_action_system and c in vocab.disclosure_actions for s, c in codes)


def _purpose(codes: tuple[Code, ...], subject: Subject, permit: bool) -> Tri:
    vocab = vocabulary()
    requested = subject.request.purpose
    return _any(
        vocab.purpose_covers(code, requested, permit=permit) if system == V3_ACT_REASON else None
        for system, code in codes
    )


def _label(codes: tuple[Code, ...], subject: Subject, permit: bool) -> Tri:
    """A deny covers data that carries any listed label. A permit covers data that carries, for each kind of label
    it lists (confidentiality, sensitivity, policy), one of the labels of that kind: kinds narrow each other
    (42CFRPart2 + ETHUD: the program's alcohol-use data), labels of one kind are alternatives (MH + SUD: a consent
    form's categories, mental health or substance use)."""
    vocab = vocabulary()
    labels = subject.labels.codes
    by_kind: dict[str, list[Tri]] = {}
    for system, code in codes:
        covered = (
            vocab.label_covers(code, labels, permit=permit) if system in (V3_ACT_CODE, V3_CONFIDENTIALITY) else None
        )
        by_kind.setdefault(_label_kind(system, code), []).append(covered)
    if not permit:
        return _any(result for results in by_kind.values() for result in results)
    return _all(_any(results) for results in by_kind.values())


def _label_kind(system: str, code: str) -> str:
    """The DS4P field a label belongs to; an unknown label is a kind of its own (it must hold by itself)."""
    vocab = vocabulary()
    if system == V3_CONFIDENTIALITY:
        return "confidentiality"
    if system == V3_ACT_CODE and vocab.is_sensitivity(code):
        return "sensitivity"
    if system == V3_ACT_CODE and code in vocab.policy_display:
        return "policy"
    return f"{system}|{code}"


def _class(codes: tuple[Code, ...], subject: Subject) -> Tri:
    resource = subject.node.resource
    profiles = set((resource.get("meta") or {}).get("profile") or ())

    def one(system: str, code: str) -> Tri:
        if system in (RESOURCE_TYPES, "None", ""):
            return code == subject.node.resource_type
        if code.startswith("http") or system == "http://hl7.org/fhir/StructureDefinition":
            return code in profiles
        return None

    return _any(one(s, c) for s, c in codes)


def _normal(system: str, code: str) -> tuple[str, str]:
    if system == vocabulary().system_uri["icd-10-cm"]:
        try:
            return system, normalize_icd10cm(code)
        except Exception:  # a malformed code compares as written
            return system, code
    return system, code


def _code(codes: tuple[Code, ...], subject: Subject) -> Tri:
    vocab = vocabulary()
    present = {_normal(vocab.canonical_system(c.system), c.code) for c in subject.node.codings}
    return any(_normal(s, c) in present for s, c in codes)


def _data(items: tuple[tuple[str, str], ...], subject: Subject) -> Tri:
    node, graph = subject.node, subject.graph

    def one(meaning: str, reference: str) -> Tri:
        target = graph.get(reference_key(reference, {}))
        if target is None:
            return None
        refers_to = {r.target for r in node.references}
        if meaning == "instance":
            return node.key == target.key
        if meaning == "related":  # the instance and what it refers to
            return node.key == target.key or node.key in {r.target for r in target.references}
        if meaning == "dependents":  # the instance and what refers to it
            return node.key == target.key or target.key in refers_to
        if meaning == "authoredby":
            return authored_by(node, target.key, graph)
        return None

    return _any(one(m, r) for m, r in items)


def matches(provision: Provision, subject: Subject, permit: bool) -> tuple[Tri, dict[str, Tri]]:
    """Whether every stated attribute holds, and the per-attribute results (for the chain's 'names' flags)."""
    instant = timing.Moment(instant=subject.request.local_instant)
    tests: dict[str, Tri] = {}
    if provision.period is not None:
        tests["period"] = timing.within(instant, provision.period)
    if provision.actors:
        tests["actor"] = _any(_actor(a, subject, permit) for a in provision.actors)
    if provision.actions:
        tests["action"] = _action(provision.actions)
    if provision.purposes:
        tests["purpose"] = _purpose(provision.purposes, subject, permit)
    if provision.security_labels:
        tests["securityLabel"] = _label(provision.security_labels, subject, permit)
    if provision.classes:
        tests["class"] = _class(provision.classes, subject)
    if provision.codes:
        tests["code"] = _code(provision.codes, subject)
    if provision.data_period is not None:
        moment = timing.data_moment(subject.node.resource)
        tests["dataPeriod"] = None if moment is None else timing.within(moment, provision.data_period)
    if provision.data:
        tests["data"] = _data(provision.data, subject)
    for name in provision.malformed & _ATTRIBUTES:
        tests[name] = None  # present but unreadable: cannot tell
    return _all(tests.values()), tests


_ATTRIBUTES = frozenset(
    {"period", "actor", "action", "purpose", "securityLabel", "class", "code", "dataPeriod", "data"}
)


@cache
def _authorship() -> tuple[frozenset[str], frozenset[str], frozenset[tuple[str, str]]]:
    """(root elements naming the author in any resource type, "Type.element" paths of the types the adapter
    emits, Provenance.agent.type codings that make agent.who the author of the targets); data/vocabulary.yaml."""
    raw = load_yaml("vocabulary.yaml")["authorship"]
    vocab = vocabulary()
    paths = frozenset(f"{rtype}.{e}" for rtype, elements in raw["by_type"].items() for e in elements)
    agents = frozenset((vocab.canonical_system(a["system"]), a["code"]) for a in raw["provenance_author_types"])
    return frozenset(raw["any_type"]), paths, agents


def _provenance_author(agent: Mapping[str, Any], target: str, by_full_url: Mapping[str, str]) -> Tri:
    """Does this Provenance.agent name `target` as the author? Unknown when the agent states no type."""
    who = agent.get("who")
    text = who.get("reference") if isinstance(who, Mapping) else None
    if not isinstance(text, str) or reference_key(text, by_full_url) != target:
        return False
    kind = agent.get("type")
    if kind is None:
        return None
    codings = kind.get("coding") if isinstance(kind, Mapping) else None
    author_types = _authorship()[2]
    vocab = vocabulary()
    return any(
        isinstance(c, Mapping) and (vocab.canonical_system(str(c.get("system"))), c.get("code")) in author_types
        for c in (codings if isinstance(codings, list) else ())
    )


def authored_by(node: Node, target: str, graph: Graph) -> Tri:
    """Consent.provision.data meaning "authoredby": is the resource authored (recorded, requested, performed) by
    `target`? By its own authorship elements, or by a Provenance of the Bundle that targets it and names `target`
    as an author agent (the Provenance itself counts as authored by its author agents too)."""
    any_type, paths, _ = _authorship()
    for ref in node.references:
        if ref.target != target:
            continue
        root_element = ref.path.count(".") == 1 and ref.path.split(".")[1] in any_type
        if root_element or ref.path in paths:
            return True
    provenances = [node] if node.resource_type == "Provenance" else []
    provenances += [
        p
        for p in graph
        if p.resource_type == "Provenance"
        and p is not node
        and any(r.target == node.key and r.path == "Provenance.target" for r in p.references)
    ]
    by_full_url = {n.full_url: n.key for n in graph if n.full_url} if provenances else {}
    results: list[Tri] = []
    for provenance in provenances:
        agents = provenance.resource.get("agent")
        for agent in agents if isinstance(agents, list) else ():
            if isinstance(agent, Mapping):
                results.append(_provenance_author(agent, target, by_full_url))
    return _any(results)


def _names_notes(provision: Provision, tests: dict[str, Tri]) -> bool:
    labels = tests.get("securityLabel") and (V3_ACT_CODE, "PSYTHPN") in provision.security_labels
    codes = tests.get("code") and bool(NOTE_CODES & set(provision.codes))
    return bool(labels or codes)


def _hlegal_excluded(provision: Provision, subject: Subject) -> bool:
    vocab = vocabulary()
    requested = subject.request.purpose
    return requested in vocab.never_by_subsumption and any(
        s == V3_ACT_REASON and c != requested and c in vocab.purpose_lineage(requested) for s, c in provision.purposes
    )


def evaluate(view: ConsentView, subject: Subject) -> tuple[Verdict | None, bool]:
    """The consent's verdict for the resource (None: not applicable) and whether a permit for a broader purpose
    stopped short of HLEGAL (reported as a reason)."""
    if view.root is None:
        return None, False
    hlegal = [False]

    def walk(provision: Provision, chain: tuple[dict[str, Tri], ...], names_notes: bool) -> Verdict | None:
        effect = provision.type if provision.type in ("permit", "deny") else "deny"  # untyped: fail closed
        matched, tests = matches(provision, subject, permit=effect == "permit")
        if effect == "permit" and matched is not True:
            hlegal[0] = hlegal[0] or _hlegal_excluded(provision, subject)
            return None
        if effect == "deny" and matched is False:
            return None
        chain = (*chain, tests)
        notes = names_notes or _names_notes(provision, tests)
        found = [v for child in provision.children if (v := walk(child, chain, notes)) is not None]
        if found:
            return most_specific_provision(found)
        return Verdict(
            effect,
            provision.path,
            names_recipient=any(t.get("actor") is True for t in chain),
            names_purpose=any(t.get("purpose") is True for t in chain),
            names_notes=notes,
        )

    return walk(view.root, (), False), hlegal[0]


def most_specific_provision(verdicts: list[Verdict]) -> Verdict:
    """Combining rule within a consent: the most specific matching provision wins.

    A nested provision is an exception to its parent, so the deepest matching provision on a branch decides
    (evaluate() only descends into provisions whose parent matched). Sibling exceptions that both match are
    combined deny-overrides: any matching deny wins over a matching permit at the same level.
    """
    denies = [v for v in verdicts if v.effect == "deny"]
    return denies[0] if denies else verdicts[0]
