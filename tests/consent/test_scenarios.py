"""Every scenario under fixtures/consents/ against its expected outcome, plus the invariants every disclosure
keeps: valid R4 (compiled validator and fhir.resources), no dangling references, inputs unchanged, audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter import fhir
from adapter.consent import SqlAuditLog, enforce, label
from adapter.consent.graph import reference_key
from adapter.consent.vocab import rules
from adapter.mappings.context import MappingContext
from adapter.pipeline import LoadedClinic, MappedChart
from adapter.schema import validator
from tests.consent.harness import build, identifier_value, key, scenario_files, select, walk_references

DIRECTORY = ("Organization", "Practitioner", "PractitionerRole", "Location")


def test_there_are_at_least_30_scenarios() -> None:
    assert len(scenario_files()) >= 30


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.stem)
def test_scenario(
    path: Path,
    loaded_clinic: LoadedClinic,
    ctx: MappingContext,
    mapped: dict[str, MappedChart],
    audit_log: SqlAuditLog,
) -> None:
    scenario = build(path, loaded_clinic, ctx, mapped)
    before = fhir.dumps(scenario.bundle)
    disclosure = enforce(scenario.bundle, scenario.request, scenario.consents, audit=audit_log)
    assert fhir.dumps(scenario.bundle) == before, "enforce modified its input"

    expect = scenario.expect
    inputs = [e["resource"] for e in scenario.bundle["entry"]]
    released = set(disclosure.released)
    decision = disclosure.decision
    withheld_reasons = {w.resource: w.reasons for w in disclosure.withheld}

    for selector in expect.get("released", []):
        keys = select(selector, inputs)
        assert keys, f"selector {selector} names nothing"
        assert set(keys) <= released, f"{selector} should be released: {[withheld_reasons.get(k) for k in keys]}"
    for selector in expect.get("withheld", []):
        keys = select(selector, inputs)
        assert keys, f"selector {selector} names nothing"
        assert not set(keys) & released, f"{selector} should be withheld"
    for selector, expected_rules in expect.get("rules", {}).items():
        for k in select(selector, inputs):
            item = decision.of(k)
            assert item is not None
            got = set(item.rules) | {r.rule for r in withheld_reasons.get(k, ())}
            assert set(expected_rules) <= got, f"{selector}: expected {expected_rules}, got {sorted(got)}"
    for selector, obligations in expect.get("obligations", {}).items():
        for k in select(selector, inputs):
            item = decision.of(k)
            assert item is not None and set(obligations) <= set(item.obligations)
    if "notice" in expect:
        assert (disclosure.notice is not None) == expect["notice"]
    if "consent_copies" in expect:
        copies = {
            identifier_value(e["resource"])
            for e in disclosure.bundle.get("entry", [])
            if e["resource"]["resourceType"] == "Consent"
        }
        assert copies == set(expect["consent_copies"])
    if expect.get("nothing_released"):
        clinical = [k for k in released if not k.startswith(DIRECTORY)]
        assert clinical == [], clinical
    for value, rule_id in expect.get("consents", {}).items():
        found = [a for a in decision.consents if a.consent.identifier and a.consent.identifier.endswith(f"|{value}")]
        assert found, f"consent {value} not assessed"
        assert rule_id in {r.rule for r in found[0].reasons}, found[0].reasons
    if "labels" in expect:
        labeled = label(scenario.bundle)
        for selector, spec in expect["labels"].items():
            for k in select(selector, inputs):
                codes = labeled.labels[k].codes
                assert set(spec.get("has", [])) <= codes, (selector, sorted(codes))
                assert not set(spec.get("lacks", [])) & codes, (selector, sorted(codes))
    events = audit_log.events(disclosure.id)
    assert len(events) == len(decision.resources) == disclosure.audit_records
    for detail in expect.get("audit_details", []):
        assert all(any(d["type"] == detail for e2 in e["entity"] for d in e2.get("detail", [])) for e in events)

    # Every rule cited is documented.
    cited = {r.rule for d in decision.resources for r in d.reasons} | {
        r.rule for a in decision.consents for r in a.reasons
    }
    assert cited <= set(rules())

    # Invariants: valid R4, no dangling references, the Bundle HWM and the 2.32 notice for consented Part 2.
    bundle = disclosure.bundle
    validator.validate(bundle)
    fhir.reference_validate(bundle)
    entries = bundle.get("entry", [])
    for entry in entries:
        fhir.reference_validate(entry["resource"])
    by_url = {e["fullUrl"]: key(e["resource"]) for e in entries if e.get("fullUrl")}
    keys = {key(e["resource"]) for e in entries}
    for entry in entries:
        for ref in walk_references(entry["resource"]):
            assert ref.startswith("#") or reference_key(ref, by_url) in keys, f"dangling {ref}"
    security = (bundle.get("meta") or {}).get("security") or []
    assert all(c["system"].endswith("v3-Confidentiality") for c in security), "only confidentiality on the Bundle"
