"""Property tests (hypothesis) for the invariants of the consent engine, over generated requests, consents and
Bundles built from the fixture clients. The oracles here are written independently of the engine's code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapter import fhir
from adapter.consent import AuditRecord, Disclosure, DisclosureRequest, Identifier, decide, enforce, label
from adapter.consent.graph import reference_key
from adapter.consent.vocab import vocabulary
from adapter.mappings import directory as directory_mapping
from adapter.mappings.profiles import RECIPIENT_CLASS_SYSTEM
from adapter.pipeline import MappedChart
from adapter.schema import validator
from adapter.terminology.systems import NPI
from tests.consent.harness import clinic, key, walk_references
from tests.consent.strategies import CLIENTS, RECIPIENTS, generated_consent, labeled_entries, mutated, requests

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PART2_RELEASE_RULES = {"PT2-CONSENT", "PT2-EMERGENCY", "PT2-CONSENT-COPY", "PATIENT-IDENTITY"}


class MemoryLog:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, records: Sequence[AuditRecord]) -> None:
        self.records.extend(records)


def _case(data: st.DataObject) -> tuple[dict[str, Any], list[dict[str, Any]], DisclosureRequest]:
    loaded, ctx, mapped = clinic().loaded, clinic().ctx, clinic().mapped
    chart = mapped[data.draw(st.sampled_from(CLIENTS))]
    bundle = data.draw(labeled_entries(chart.bundle))
    patient = next(key(e["resource"]) for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    own = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Consent"]
    consents = [data.draw(mutated(c)) for c in own]
    consents += [data.draw(generated_consent(ctx, patient, n)) for n in range(data.draw(st.integers(0, 3)))]
    by_key = {key(c): c for c in consents}
    entries = [{**e, "resource": by_key.pop(key(e["resource"]), e["resource"])} for e in bundle["entry"]]
    entries += [{"fullUrl": f"{ctx.fhir_base}/{k}", "resource": c} for k, c in by_key.items()]
    present = {key(e["resource"]) for e in entries}
    for org in RECIPIENTS:  # generated consents name these: the Bundle carries them, as the mapping would
        resource = directory_mapping.organization(loaded.clinic.directory.organizations[org], ctx)
        if key(resource) not in present:
            entries.append({"fullUrl": f"{ctx.fhir_base}/{key(resource)}", "resource": resource})
    request = data.draw(requests())
    if consents and data.draw(st.booleans()):
        request = _aimed_at(data, data.draw(st.sampled_from(consents)), request, orgs_by_ref(ctx))
    return {**bundle, "entry": entries}, consents, request


def orgs_by_ref(ctx: Any) -> dict[str, str]:
    return {f"Organization/{ctx.id('Organization', org)}": org for org in RECIPIENTS}


def _aimed_at(
    data: st.DataObject, consent: Mapping[str, Any], request: DisclosureRequest, orgs: Mapping[str, str]
) -> DisclosureRequest:
    """A request that a provision of `consent` names (recipient, purpose, an instant in its period), so that
    the generated cases exercise consented releases, not only denials."""
    root = consent.get("provision") or {}
    provision = data.draw(st.sampled_from(_provisions(root)))
    update: dict[str, Any] = {}
    actors = provision.get("actor") or root.get("actor") or []
    if actors:
        ref = data.draw(st.sampled_from(actors))["reference"]
        org = orgs.get(ref.get("reference", ""))
        if org is not None:
            update["recipient_organizations"] = (Identifier(system=NPI, value=RECIPIENTS[org]),)
            update["recipient_name"] = org
        else:
            update["treating_relationship"] = True
    purposes = provision.get("purpose") or root.get("purpose") or []
    if purposes:
        update["purpose"] = data.draw(st.sampled_from(purposes))["code"]
    start = ((consent.get("provision") or {}).get("period") or {}).get("start")
    signed = str(consent.get("dateTime") or "")[:10]
    bounds = [date.fromisoformat(d[:10]) for d in (start, signed) if d]
    if bounds:
        day = max(bounds) + timedelta(days=data.draw(st.integers(0, 200)))
        update["instant"] = datetime(day.year, day.month, day.day, 12, tzinfo=timezone(timedelta(hours=-5)))
    return request.model_copy(update=update)


def _in_period(request: DisclosureRequest, consent: Mapping[str, Any]) -> bool:
    """Independent oracle: date-only bounds, compared with the local date of the request instant. A consent relied
    on is signed on a known date (42 CFR 2.31(a); 45 CFR 164.508(c)(1)(vi)): an undated one is never in period."""
    day = request.instant.date()
    period = (consent.get("provision") or {}).get("period") or {}
    start, end = period.get("start"), period.get("end")
    signed = str(consent.get("dateTime") or "")[:10]
    return (
        (not start or date.fromisoformat(start[:10]) <= day)
        and (not end or day <= date.fromisoformat(end[:10]))
        and bool(signed)
        and date.fromisoformat(signed) <= day
    )


def _provisions(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [node, *(p for child in node.get("provision") or () for p in _provisions(child))]


def _chains(
    node: Mapping[str, Any], ancestors: tuple[Mapping[str, Any], ...] = ()
) -> list[tuple[Mapping[str, Any], ...]]:
    """Every provision with the provisions above it: a nested provision is an exception within its parent's
    scope, so the actors and purposes its ancestors state apply to it too."""
    chain = (*ancestors, node)
    return [chain, *(c for child in node.get("provision") or () for c in _chains(child, chain))]


def _covers(consent: Mapping[str, Any], request: DisclosureRequest, orgs: Mapping[str, set[tuple[str, str]]]) -> bool:
    """Independent, weaker oracle: some permit provision names this recipient and some covers the purpose (a
    provision's own actors and purposes, or those of the provisions it is nested in)."""
    vocab = vocabulary()
    recipient = {(i.system, i.value) for i in request.recipient_organizations}
    named = purposed = False
    for chain in _chains(consent.get("provision") or {}):
        if chain[-1].get("type") != "permit":
            continue
        for actor in (a for provision in chain for a in provision.get("actor") or ()):
            ref = actor["reference"]
            if ref.get("identifier", {}).get("system") == RECIPIENT_CLASS_SYSTEM:
                named |= request.treating_relationship
            else:
                named |= bool(orgs.get(ref.get("reference", ""), set()) & recipient)
        for purpose in (c for provision in chain for c in provision.get("purpose") or ()):
            code = purpose["code"]
            purposed |= code == request.purpose or (
                request.purpose != "HLEGAL" and code in vocab.purpose_lineage(request.purpose)
            )
    return named and purposed


def _check_no_dangling(disclosure: Disclosure) -> None:
    entries = disclosure.bundle.get("entry", [])
    by_url = {e["fullUrl"]: key(e["resource"]) for e in entries if e.get("fullUrl")}
    keys = {key(e["resource"]) for e in entries}
    for entry in entries:
        for ref in walk_references(entry["resource"]):
            assert ref.startswith("#") or reference_key(ref, by_url) in keys, ref


@PROPERTY
@given(data=st.data())
def test_release_invariants(data: st.DataObject) -> None:
    bundle, consents, request = _case(data)
    before = (fhir.dumps(bundle), [fhir.dumps(c) for c in consents])
    log = MemoryLog()
    disclosure = enforce(bundle, request, consents, audit=log)
    again = enforce(bundle, request, consents, audit=MemoryLog())

    # Inputs are unchanged after label/decide/enforce; the same input gives the same output.
    labeled = label(bundle)
    decide(request, consents, labeled)
    assert (fhir.dumps(bundle), [fhir.dumps(c) for c in consents]) == before
    assert fhir.dumps(again.bundle) == fhir.dumps(disclosure.bundle)
    assert again.decision == disclosure.decision

    by_key = {key(e["resource"]): e["resource"] for e in bundle["entry"]}
    consent_by_id = {c["id"]: c for c in consents}
    orgs = {
        k: {(i["system"], i["value"]) for i in r.get("identifier", [])}
        for k, r in by_key.items()
        if r["resourceType"] == "Organization"
    }
    output = {key(e["resource"]): e["resource"] for e in disclosure.bundle.get("entry", [])}
    for k, released in output.items():
        if k == disclosure.notice:
            continue
        item = disclosure.decision.of(k)
        assert item is not None and item.status == "permit"
        labels = labeled.labels.get(k)
        # No Part 2 resource is released without an active consent covering recipient and purpose, except an
        # emergency (to medical personnel).
        if labels is not None and labels.part2:
            assert set(item.rules) & PART2_RELEASE_RULES, (k, item.rules)
            event("a Part 2 resource was released")
            if "PT2-EMERGENCY" in item.rules:
                assert request.emergency is not None and request.recipient_is_medical_personnel
            else:
                assert item.relied_on, (k, item.rules)
                assert any(_covers(consent_by_id[r.id], request, orgs) for r in item.relied_on), k
        if item.relied_on:
            event("released under a consent")
        # A revoked or expired consent never permits.
        for ref in item.relied_on:
            consent = consent_by_id[ref.id]
            assert consent["status"] == "active" and _in_period(request, consent), (k, ref)
        # Labels are never removed.
        kept = {(c.get("system"), c.get("code")) for c in (released.get("meta") or {}).get("security", [])}
        original = {(c.get("system"), c.get("code")) for c in (by_key[k].get("meta") or {}).get("security", [])}
        assert original <= kept, k

    # No dangling reference after redaction; the Bundle is valid R4; every decision is audited.
    if any(w.resource in output for w in disclosure.withheld) or len(output) < len(by_key):
        event("something was withheld")
    _check_no_dangling(disclosure)
    validator.validate(disclosure.bundle)
    assert len(log.records) == len(disclosure.decision.resources)


@PROPERTY
@given(data=st.data())
def test_inactive_or_expired_consents_never_permit(data: st.DataObject) -> None:
    bundle, consents, request = _case(data)
    dead = [
        {**c, "status": data.draw(st.sampled_from(["inactive", "entered-in-error"]))}
        if data.draw(st.booleans())
        else {**c, "provision": {**c["provision"], "period": {"start": "2020-01-01", "end": "2020-12-31"}}}
        for c in consents
    ]
    disclosure = enforce(bundle, request, dead, audit=MemoryLog())
    for item in disclosure.decision.resources:
        assert not item.relied_on
        assert not {"PT2-CONSENT", "DEC-CONSENT-PERMIT", "PT2-CONSENT-COPY"} & set(item.rules)
        if item.status == "permit" and item.part2:
            assert set(item.rules) & {"PT2-EMERGENCY", "PATIENT-IDENTITY"}


# --- labeling: no sensitive code and no Part 2 source, no sensitivity label ----------------------------------
SENSITIVE = [
    ("http://hl7.org/fhir/sid/icd-10-cm", "F11.20"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "F1120"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "F33.1"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "B20"),
    ("http://snomed.info/sct", "75544000"),
    ("http://loinc.org", "44261-6"),  # PHQ-9 total
    ("http://loinc.org", "82667-7"),  # DAST-10 total
]
PLAIN = [
    ("http://hl7.org/fhir/sid/icd-10-cm", "J45.909"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "I10"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "F17.210"),  # nicotine dependence: not SUD
    ("http://snomed.info/sct", "38341003"),
    ("http://loinc.org", "8480-6"),
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "1010604"),  # buprenorphine/naloxone: judged by program
    ("http://www.ama-assn.org/go/cpt", "99213"),
]


@PROPERTY
@given(
    codes=st.lists(st.sampled_from(SENSITIVE + PLAIN), min_size=1, max_size=4),
    program=st.sampled_from(["prog-omh", "prog-sud"]),  # the programs of cl-16's Bundle (unknown = Part 2)
    as_answer=st.booleans(),
)
def test_sensitivity_only_from_sensitive_codes_or_part2_source(
    codes: list[tuple[str, str]], program: str, as_answer: bool
) -> None:
    ctx = clinic().ctx
    base = clinic().mapped["cl-16"].bundle  # has the program Organizations
    codings = [{"system": s, "code": c} for s, c in codes]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "prop",
        "meta": {"source": ctx.program_url(program)},
    }
    resource["status"] = "final"
    if as_answer:
        resource["code"] = {"text": "question"}
        resource["valueCodeableConcept"] = {"coding": codings}
    else:
        resource["code"] = {"coding": codings}
    bundle = {**base, "entry": [*base["entry"], {"fullUrl": f"{ctx.fhir_base}/Observation/prop", "resource": resource}]}
    labels = label(bundle).labels["Observation/prop"]
    sensitive_code = any(c in SENSITIVE for c in codes)
    part2 = program == "prog-sud"
    assert bool(labels.sensitivity) == (sensitive_code or part2)
    assert labels.part2 == part2
    assert labels.confidentiality == ("R" if sensitive_code or part2 else "N")


@pytest.mark.parametrize("client", CLIENTS)
def test_labeling_an_unlabeled_fixture_never_labels_plain_resources(
    client: str, mapped: dict[str, MappedChart]
) -> None:
    """Progress notes with no sensitive code from a non-Part 2 program stay without a sensitivity label."""
    labeled = label(mapped[client].bundle)
    for node in labeled.graph:
        resource = node.resource
        if resource["resourceType"] != "DocumentReference" or resource["type"]["coding"][1]["code"] != "progress-note":
            continue
        source = resource["meta"]["source"]
        part2 = labeled.sources.facts(source)
        if part2 is not None and not part2.part2:
            assert not labeled.labels[node.key].sensitivity, node.key


@PROPERTY
@given(data=st.data())
def test_trusting_a_validated_input_changes_nothing(data: st.DataObject) -> None:
    """enforce(validated_input=True) re-checks only what it changed: on valid input, the same Bundle, the same
    withheld list and the same audit as the full check."""
    bundle, consents, request = _case(data)
    checked, trusted = MemoryLog(), MemoryLog()
    full = enforce(bundle, request, consents, audit=checked)
    fast = enforce(bundle, request, consents, audit=trusted, validated_input=True)
    assert fhir.dumps(fast.bundle) == fhir.dumps(full.bundle)
    assert fast.withheld == full.withheld
    assert [fhir.dumps(r.event) for r in trusted.records] == [fhir.dumps(r.event) for r in checked.records]


def _outcomes(disclosure: Disclosure) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {d.resource: (d.status, d.rules) for d in disclosure.decision.resources}


@PROPERTY
@given(data=st.data())
def test_a_grantee_among_the_performers_changes_nothing(data: st.DataObject) -> None:
    """R4 Consent.performer may name the grantee: the clinic's Organization next to the signer changes no
    decision (it neither signs nor voids a consent)."""
    bundle, consents, request = _case(data)
    clinic_org = next(
        key(e["resource"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Organization"
        and any(i.get("value") == "1655204174" for i in e["resource"].get("identifier", []))
    )
    with_grantee = [{**c, "performer": [*c.get("performer", []), {"reference": clinic_org}]} for c in consents]
    before = enforce(bundle, request, consents, audit=MemoryLog())
    after = enforce(bundle, request, with_grantee, audit=MemoryLog())
    assert _outcomes(after) == _outcomes(before)


@PROPERTY
@given(data=st.data())
def test_an_undated_consent_never_releases_more(data: st.DataObject) -> None:
    """Taking the signing date off a consent can only take releases away: its permits stop, its denies stay."""
    bundle, consents, request = _case(data)
    if not consents:
        return
    undated_id = data.draw(st.sampled_from([c["id"] for c in consents]))
    undated = [{k: v for k, v in c.items() if k != "dateTime"} if c["id"] == undated_id else c for c in consents]
    before = enforce(bundle, request, consents, audit=MemoryLog())
    after = enforce(bundle, request, undated, audit=MemoryLog())
    assert set(after.released) - {after.notice} <= set(before.released) - {before.notice}
    assert all(r.id != undated_id for d in after.decision.resources for r in d.relied_on)
