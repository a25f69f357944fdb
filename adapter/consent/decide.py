"""Step 2, decide (pure): consents + statutory defaults -> permit or deny per resource, with reasons.

For each resource, in this order (the first rule that applies decides; docs/consent.md walks through it):

1. Directory entries (organizations, practitioners) are released only if a released resource references them;
   consent directives are not clinical data (the ones relied on are attached as copies, 42 CFR 2.32(b)).
2. Psychotherapy notes and SUD counseling notes (the adapter's note types, or anything labeled PSYTHPN or
   HIPAAPsyNotes): only with an in-force, notes-only consent whose permit names them, names the recipient and
   covers the purpose (45 CFR 164.508(a)(2), (c)(1)(iii)-(iv); 42 CFR 2.31(b)); never by default, never in an
   emergency; an explicit deny wins.
3. A medical emergency to medical personnel for treatment releases Part 2 data (42 CFR 2.51) and restricted
   HIPAA data (164.522(a)(1)(iii)), with immediate documentation.
4. An explicit deny of a live consent denies: :func:`deny_overrides` (a consent whose permits cannot be relied
   on, e.g. undated or malformed, still denies: fail closed).
5. Part 2 data needs a permit from an in-force Part 2 consent that names the recipient and the purpose:
   :func:`part2_permit_requires_covering_consent`; otherwise denied (the default for Part 2 is DENY).
6. Other data follows HIPAA: a consent permit that names the recipient; else a client-requested restriction
   denies; else treatment, payment and operations are permitted (never HLEGAL); other purposes need an
   authorization.

After these, the Patient follows the records it identifies (:func:`_patient_identity`) and the consents a
Part 2 permit relied on are released as copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapter.consent.consents import ConsentView, Provision, Standing, parse_consent, standing
from adapter.consent.labeler import LabeledBundle, ResourceLabels
from adapter.consent.model import (
    ConsentAssessment,
    ConsentRef,
    Decision,
    DisclosureRequest,
    Reason,
    ResourceDecision,
)
from adapter.consent.provisions import Subject, Verdict, evaluate
from adapter.consent.vocab import vocabulary

# Obligations (docs/consent.md): v3-ActCode refrain/obligation codes and the engine's own.
NORDSCLCD = "NORDSCLCD"  # refrain: no redisclosure without consent directive (on each Part 2 resource)
MINEC = "MINEC"  # obligation: minimum necessary (HIPAA payment and operations)
ATTACH_NOTICE = "attach-2.32-notice"
ATTACH_CONSENT = "attach-consent-copy"
DOCUMENT_EMERGENCY = "document-emergency"

NOTE_KINDS = frozenset({"psychotherapy-note", "sud-counseling-note"})


@dataclass(frozen=True)
class _Scored:
    view: ConsentView
    assessment: ConsentAssessment
    verdict: Verdict
    denies: bool = True  # the consent's denies apply (Standing.denies)


def deny_overrides(verdicts: Sequence[_Scored]) -> list[_Scored]:
    """Combining rule across consents: any matching explicit deny of a live consent wins over every permit
    (whatever the consents' dates). Returns the denying consents (empty: no deny applies)."""
    return [s for s in verdicts if s.verdict.effect == "deny" and s.denies]


def part2_permit_requires_covering_consent(verdicts: Sequence[_Scored]) -> list[_Scored]:
    """Combining rule for Part 2 data: a permit needs at least one covering consent, i.e. an in-force Part 2
    consent (policyRule 42CFRPart2) whose matching permit chain names this recipient and covers this purpose.
    Returns the covering consents (empty: the Part 2 default, deny, applies)."""
    return [
        s
        for s in verdicts
        if s.verdict.effect == "permit"
        and s.view.part2
        and s.assessment.in_force_part2
        and s.verdict.names_recipient
        and s.verdict.names_purpose
    ]


def _notes_only(view: ConsentView) -> bool:
    """A notes consent may be combined only with another notes consent: every permit provision of it is limited
    to psychotherapy / counseling notes (its security labels are only PSYTHPN, or its codes only note kinds)."""
    if view.root is None:
        return False

    def notes_only(provision: Provision) -> bool:
        labels = {code for _, code in provision.security_labels}
        codes = {code for _, code in provision.codes}
        return bool(labels and labels <= {"PSYTHPN"}) or bool(codes and codes <= NOTE_KINDS)

    permits = [p for p in view.root.walk() if p.type == "permit"]
    return bool(permits) and all(notes_only(p) for p in permits)


def _restricted(request: DisclosureRequest) -> bool:
    vocab = vocabulary()
    for restriction in request.hipaa_restrictions:
        recipients = {(i.system, i.value) for i in restriction.recipients}
        to_them = not recipients or bool(recipients & request.recipient_identifiers)
        purpose = not restriction.purposes or any(
            vocab.purpose_covers(p, request.purpose, permit=False) for p in restriction.purposes
        )
        if to_them and purpose:
            return True
    return False


def _emergency_applies(request: DisclosureRequest) -> bool:
    return (
        request.emergency is not None
        and request.recipient_is_medical_personnel
        and vocabulary().in_purpose_subtree(request.purpose, "TREAT")
    )


def _refs(scored: Sequence[_Scored]) -> tuple[ConsentRef, ...]:
    return tuple(s.view.ref for s in scored)


def _reasons(rule: str, scored: Sequence[_Scored], detail: str = "") -> tuple[Reason, ...]:
    if not scored:
        return (Reason(rule, None, detail),)
    return tuple(Reason(rule, s.view.ref, detail or s.verdict.path) for s in scored)


def _decide_one(
    key: str, labels: ResourceLabels, scored: list[_Scored], hlegal: bool, request: DisclosureRequest
) -> ResourceDecision:
    part2 = labels.part2
    in_force = [s for s in scored if (s.assessment.in_force_part2 if part2 else s.assessment.in_force_hipaa)]
    if labels.note_kind is not None:
        return _notes(key, labels, scored, in_force)
    if _emergency_applies(request):
        detail = request.emergency.description if request.emergency else ""
        if part2:
            obligations = (NORDSCLCD, ATTACH_NOTICE, DOCUMENT_EMERGENCY)
            return ResourceDecision(key, "permit", (Reason("PT2-EMERGENCY", None, detail),), obligations, True)
        return ResourceDecision(key, "permit", (Reason("HIPAA-EMERGENCY", None, detail),), (DOCUMENT_EMERGENCY,))
    not_medical = "recipient not attested as medical personnel, or purpose not treatment"
    refused = (Reason("PT2-EMERGENCY-NOT-MEDICAL", None, not_medical),) if request.emergency else ()
    denies = deny_overrides(scored)
    if denies:
        return ResourceDecision(key, "deny", (*_reasons("DEC-CONSENT-DENY", denies), *refused), (), part2)
    if part2:
        return _part2(key, in_force, hlegal, request, refused)
    return _hipaa(key, in_force, request, refused)


def _notes(key: str, labels: ResourceLabels, scored: list[_Scored], in_force: list[_Scored]) -> ResourceDecision:
    """Psychotherapy / SUD counseling notes: only a separate consent that names the notes, the recipient and the
    purpose (45 CFR 164.508(c)(1)(iii)-(iv): an authorization names the recipient and describes each purpose; a
    stricter test than ordinary PHI's, which needs only the recipient); never a default or an emergency."""
    part2 = labels.part2
    denies = deny_overrides(scored)
    if denies:
        return ResourceDecision(key, "deny", _reasons("DEC-CONSENT-DENY", denies), (), part2)
    separate = [s for s in in_force if s.verdict.effect == "permit" and s.verdict.names_notes and _notes_only(s.view)]
    naming = [s for s in separate if s.verdict.names_recipient and s.verdict.names_purpose]
    if part2:
        naming = part2_permit_requires_covering_consent(naming)
    if not naming:
        combined = [s for s in in_force if s.verdict.names_notes and not _notes_only(s.view)]
        extra = _reasons("CNS-NOTES-NOT-SEPARATE", combined) if combined else ()
        unnamed = [s for s in separate if not (s.verdict.names_recipient and s.verdict.names_purpose)]
        extra += _reasons("NOTES-RECIPIENT-AND-PURPOSE", unnamed) if unnamed else ()
        return ResourceDecision(
            key, "deny", (Reason("NOTES-NEED-NAMING-CONSENT", None, labels.note_kind or ""), *extra)
        )
    obligations: tuple[str, ...] = (NORDSCLCD, ATTACH_NOTICE, ATTACH_CONSENT) if part2 else ()
    rule = "PT2-CONSENT" if part2 else "DEC-CONSENT-PERMIT"
    return ResourceDecision(key, "permit", _reasons(rule, naming), obligations, part2, _refs(naming))


def _part2(
    key: str, in_force: list[_Scored], hlegal: bool, request: DisclosureRequest, refused: tuple[Reason, ...]
) -> ResourceDecision:
    """Part 2 data: a covering Part 2 consent, or the default: DENY."""
    covering = part2_permit_requires_covering_consent(in_force)
    if covering:
        reasons = _reasons("PT2-CONSENT", covering)
        if vocabulary().is_tpo(request.purpose) and any(_tpo_consent(s.view) for s in covering):
            reasons += (Reason("PT2-TPO", covering[0].view.ref),)
        obligations = (NORDSCLCD, ATTACH_NOTICE, ATTACH_CONSENT)
        return ResourceDecision(key, "permit", reasons, obligations, True, _refs(covering))
    partial = [s for s in in_force if s.verdict.effect == "permit"]
    extra = _reasons("PT2-NOT-PART2-CONSENT", partial) if partial else ()
    hlegal_reason = (Reason("PT2-HLEGAL"),) if hlegal else ()
    return ResourceDecision(key, "deny", (Reason("PT2-DEFAULT-DENY"), *extra, *hlegal_reason, *refused), (), True)


def _hipaa(
    key: str, in_force: list[_Scored], request: DisclosureRequest, refused: tuple[Reason, ...]
) -> ResourceDecision:
    """Other PHI: an authorization naming the recipient; else a restriction; else TPO; else deny."""
    vocab = vocabulary()
    permits = [s for s in in_force if s.verdict.effect == "permit" and s.verdict.names_recipient]
    if permits:
        return ResourceDecision(key, "permit", _reasons("DEC-CONSENT-PERMIT", permits), (), False, _refs(permits))
    if _restricted(request):
        return ResourceDecision(key, "deny", (Reason("HIPAA-RESTRICTION"), *refused))
    if vocab.is_tpo(request.purpose):
        obligations = () if vocab.in_purpose_subtree(request.purpose, "TREAT") else (MINEC,)
        return ResourceDecision(key, "permit", (Reason("HIPAA-TPO", None, request.purpose),), obligations)
    if request.purpose in vocab.never_by_subsumption:
        return ResourceDecision(key, "deny", (Reason("HIPAA-HLEGAL"), *refused))
    return ResourceDecision(key, "deny", (Reason("HIPAA-AUTHORIZATION-REQUIRED", None, request.purpose), *refused))


def _tpo_consent(view: ConsentView) -> bool:
    """A single consent for treatment, payment and operations (42 CFR 2.31(a)(4)(i), 2.33(b))."""
    if view.root is None:
        return False
    purposes = {code for p in view.root.walk() if p.type == "permit" for _, code in p.purposes}
    return set(vocabulary().tpo) <= purposes


def decide(request: DisclosureRequest, consents: Sequence[dict[str, Any]], labeled: LabeledBundle) -> Decision:
    """Decide every entry of a labeled Bundle for a request, given the client's Consent resources. Pure."""
    graph = labeled.graph
    by_full_url = {n.full_url: n.key for n in graph if n.full_url}
    views = sorted((parse_consent(c, by_full_url) for c in consents), key=lambda v: v.key)
    standings = [standing(v, request, graph) for v in views]
    assessments = [s.assessment for s in standings]
    live: list[tuple[ConsentView, Standing]] = [(v, s) for v, s in zip(views, standings, strict=True) if s.denies]
    decisions: list[ResourceDecision] = []
    consent_keys = {v.key for v in views} | {n.key for n in graph if n.resource_type == "Consent"}
    for node in graph:
        if node.is_directory:
            decisions.append(ResourceDecision(node.key, "permit", (Reason("DEC-DIRECTORY"),)))
            continue
        labels = labeled.labels[node.key]
        if node.key in consent_keys:
            decisions.append(ResourceDecision(node.key, "deny", (Reason("DEC-CONSENT-RECORD"),), (), labels.part2))
            continue
        subject = Subject(request, node, labels, graph)
        scored: list[_Scored] = []
        hlegal = False
        for view, stand in live:
            verdict, excluded = evaluate(view, subject)
            hlegal = hlegal or excluded
            if verdict is not None:
                scored.append(_Scored(view, stand.assessment, verdict, stand.denies))
        decisions.append(_decide_one(node.key, labels, scored, hlegal, request))
    decisions = _patient_identity(decisions, labeled)
    decisions = _mark_relied_on_consents(decisions, labeled)
    return Decision(request, tuple(decisions), tuple(assessments))


def _patient_identity(decisions: list[ResourceDecision], labeled: LabeledBundle) -> list[ResourceDecision]:
    """The records released identify the patient, so the Patient goes with them (PATIENT-IDENTITY), unless a
    consent explicitly denies it. A Part 2 Patient (registered by a Part 2 program) goes only with Part 2
    records released under consent or emergency, never with HIPAA-only data: that would reveal the program."""
    patient = labeled.graph.patient()
    current = next((d for d in decisions if patient and d.resource == patient.key), None)
    if patient is None or current is None or current.status == "permit":
        return decisions
    if any(r.rule == "DEC-CONSENT-DENY" for r in current.reasons):
        return decisions
    carriers = [
        d
        for d in decisions
        if d.status == "permit"
        and d.resource != patient.key
        and not d.resource.startswith("Consent/")
        and any(r.rule != "DEC-DIRECTORY" for r in d.reasons)
        and (d.part2 or not current.part2)
    ]
    if not carriers:
        return decisions
    relied = tuple(dict.fromkeys(ref for d in carriers for ref in d.relied_on))
    obligations = tuple(dict.fromkeys(o for d in carriers for o in d.obligations)) if current.part2 else ()
    replaced = ResourceDecision(
        current.resource,
        "permit",
        (Reason("PATIENT-IDENTITY", relied[0] if relied else None, f"with {carriers[0].resource}"),),
        obligations,
        current.part2,
        relied,
    )
    return [replaced if d is current else d for d in decisions]


def _mark_relied_on_consents(decisions: list[ResourceDecision], labeled: LabeledBundle) -> list[ResourceDecision]:
    """The consents a Part 2 permit relied on are released as the copy of the consent (42 CFR 2.32(b))."""
    relied = {
        ref.id
        for d in decisions
        if d.status == "permit" and d.part2 and ATTACH_CONSENT in d.obligations
        for ref in d.relied_on
    }
    out = []
    for d in decisions:
        rid = d.resource.partition("/")[2]
        if d.resource.startswith("Consent/") and rid in relied:
            labels = labeled.labels[d.resource]
            ref = next(r for x in decisions for r in x.relied_on if r.id == rid)
            out.append(
                ResourceDecision(
                    d.resource, "permit", (Reason("PT2-CONSENT-COPY", ref),), (NORDSCLCD,), labels.part2, (ref,)
                )
            )
        else:
            out.append(d)
    return out
