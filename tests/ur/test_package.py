"""Utilization-review packages: PAS shape, minimum necessary, 42 CFR Part 2 through enforce, determinism, R4."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from adapter import fhir
from adapter.consent.graph import key_of, reference_key, scan
from adapter.errors import UsageError
from adapter.pipeline import MappedChart
from adapter.schema import validator
from adapter.sync.partners import Partner, load_partners
from adapter.ur import NothingReleasableError, UrPackage, build_package, check_payer
from tests.conftest import ROOT
from tests.ur.conftest import MemoryAudit, RequestFactory, cl02_with

R4 = models["r4"]
WITHIN_A_YEAR_OF_DAST = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # cl-02's DAST-10 is from 2025-09-15
PART2 = "42CFRPart2"


def path(resource: dict[str, Any], expression: str) -> list[Any]:
    return list(evaluate(resource, expression, {}, R4))


def resources(package: UrPackage, rtype: str | None = None) -> list[dict[str, Any]]:
    found = [e["resource"] for e in package.bundle["entry"]]
    return [r for r in found if rtype is None or r["resourceType"] == rtype]


def security_codes(resource: dict[str, Any]) -> set[str]:
    return {str(c["code"]) for c in (resource.get("meta") or {}).get("security") or ()}


def identifier_values(package: UrPackage, rtype: str) -> set[str]:
    return {str(i["value"]) for r in resources(package, rtype) for i in r.get("identifier") or ()}


@pytest.fixture
def cl08(
    clinic_charts: dict[str, MappedChart], partners: dict[str, Partner], make_request: RequestFactory
) -> UrPackage:
    return build_package(clinic_charts["cl-08"], partners["granite-mutual"], make_request("cl-08"), audit=MemoryAudit())


def test_the_claim_comes_first_and_is_a_preauthorization(cl08: UrPackage) -> None:
    bundle = cl08.bundle
    assert path(bundle, "Bundle.type") == ["collection"]
    claim = path(bundle, "Bundle.entry.first().resource")[0]
    assert claim["resourceType"] == "Claim"
    assert path(claim, "Claim.use") == ["preauthorization"]
    assert path(claim, "Claim.status") == ["active"]
    assert path(claim, "Claim.item.productOrService.coding.code") == ["S9480"]
    assert path(claim, "Claim.item.servicedPeriod.start") == ["2026-11-02"]
    assert set(path(claim, "Claim.diagnosis.diagnosisCodeableConcept.coding.code")) == {"F33.1", "F41.1"}
    assert path(claim, "Claim.item.diagnosisSequence") == path(claim, "Claim.diagnosis.sequence")


def test_every_reference_resolves_in_the_package(cl08: UrPackage) -> None:
    entries = cl08.bundle["entry"]
    by_full_url = {e["fullUrl"]: key_of(e["resource"]) for e in entries}
    keys = set(by_full_url.values())
    claim = entries[0]["resource"]
    supporting = path(claim, "Claim.supportingInfo.valueReference.reference")
    assert supporting and all(reference_key(ref, by_full_url) in keys for ref in supporting)
    for ref in path(claim, "Claim.insurer.reference | Claim.provider.reference | Claim.insurance.coverage.reference"):
        assert reference_key(ref, by_full_url) in keys
    dangling = [
        (key_of(e["resource"]), p)
        for e in entries
        for p, text in scan(e["resource"])[1]
        if reference_key(text, by_full_url) not in keys
    ]
    assert dangling == []


def test_the_payer_is_the_insurer_and_the_coverage_payor(cl08: UrPackage) -> None:
    claim = resources(cl08, "Claim")[0]
    coverage = resources(cl08, "Coverage")[0]
    assert claim["insurer"] == coverage["payor"][0]
    payer = next(r for r in resources(cl08, "Organization") if key_of(r) == claim["insurer"]["reference"])
    assert {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1477390110"} in payer["identifier"]
    assert coverage["subscriberId"] == "GMH40010008"  # the client's MB identifier


def test_minimum_necessary_leaves_out_notes_consents_safety_plans_and_items(
    clinic_charts: dict[str, MappedChart], partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    package = build_package(
        clinic_charts["cl-16"], partners["granite-mutual"], make_request("cl-16"), audit=MemoryAudit()
    )
    types = {r["resourceType"] for r in resources(package)}
    assert not types & {"DocumentReference", "Consent", "Flag", "Encounter", "MedicationRequest", "Provenance"}
    assert "sp-16" not in identifier_values(package, "CarePlan")  # the safety plan
    assert [r["questionnaire"] for r in resources(package, "QuestionnaireResponse")] == [
        "https://bh-fhir-adapter.dev/fhir/Questionnaire/ur-level-of-care-worksheet|1"
    ]
    assert all(
        ("hasMember" not in r and "valueQuantity" in r) or "valueCodeableConcept" in r
        for r in resources(package, "Observation")
    )
    rules = {e.rule for e in package.excluded}
    assert {"MN-NOTES", "MN-SAFETY", "MN-ITEM-LEVEL", "MN-CONSENT"} <= rules


def test_substance_use_scores_only_for_a_substance_use_level_of_care(
    clinic_charts: dict[str, MappedChart], partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    package = build_package(
        clinic_charts["cl-03"], partners["granite-mutual"], make_request("cl-03"), audit=MemoryAudit()
    )
    codes = {c for r in resources(package, "Observation") for c in path(r, "Observation.code.coding.code")}
    assert "75626-2" not in codes  # AUDIT-C, from the mental-health intake: not needed for a mental-health request
    assert any(e.rule == "MN-NOT-RELEVANT" for e in package.excluded)


def test_part2_data_is_withheld_without_a_payment_consent(
    clinic_charts: dict[str, MappedChart], partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    package = build_package(
        clinic_charts["cl-16"], partners["granite-mutual"], make_request("cl-16", "asam-2.1"), audit=MemoryAudit()
    )
    assert not any(PART2 in security_codes(r) for r in resources(package))
    assert identifier_values(package, "Condition") == {"dx-16-mdd"}
    withheld = {w.rule for w in package.withheld if w.resource.startswith("Condition/")}
    assert withheld == {"PT2-DEFAULT-DENY"}
    assert package.notice is None


def test_a_client_wholly_in_the_part2_program_gets_no_package_without_consent(
    partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    audit = MemoryAudit()
    with pytest.raises(NothingReleasableError) as raised:
        build_package(cl02_with(), partners["granite-mutual"], make_request("cl-02", "asam-2.1"), audit=audit)
    assert raised.value.http_status == 409
    assert audit.records  # the refusal was decided by enforce and audited


@pytest.mark.parametrize("purpose", ["HPAYMT", "COVAUTH"])
def test_a_payment_consent_for_this_payer_releases_part2_data_with_the_notice(
    partners: dict[str, Partner], make_request: RequestFactory, purpose: str
) -> None:
    chart = cl02_with("cl-02-payment-consent-granite.json")
    request = make_request("cl-02", "asam-2.1", purpose=purpose, instant=WITHIN_A_YEAR_OF_DAST)
    package = build_package(chart, partners["granite-mutual"], request, audit=MemoryAudit())
    assert identifier_values(package, "Condition") == {"dx-02-oud"}
    condition = resources(package, "Condition")[0]
    assert {PART2, "NORDSCLCD"} <= security_codes(condition)
    codes = {c for r in resources(package, "Observation") for c in path(r, "Observation.code.coding.code")}
    assert "82667-7" in codes  # DAST-10 total, relevant to a substance-use level of care
    assert package.notice is not None and package.notice in {key_of(r) for r in resources(package)}
    assert identifier_values(package, "Consent") == {"cns-02-granite-payment"}  # the copy 2.32 relies on
    assert PART2 in security_codes(resources(package, "Claim")[0])  # the request side carries the labels


def test_a_consent_naming_another_payer_does_not_count(
    partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    chart = cl02_with("cl-02-payment-consent-summit.json")
    with pytest.raises(NothingReleasableError):
        build_package(chart, partners["granite-mutual"], make_request("cl-02", "asam-2.1"), audit=MemoryAudit())
    to_summit = make_request("cl-02", "asam-2.1", payer="summit-ridge")
    package = build_package(chart, partners["summit-ridge"], to_summit, audit=MemoryAudit())
    assert identifier_values(package, "Condition") == {"dx-02-oud"}


def test_trended_scores_are_ordered_by_date(cl08: UrPackage) -> None:
    phq9 = [r for r in resources(cl08, "Observation") if path(r, "Observation.code.coding.code") == ["44261-6"]]
    dates = [r["effectiveDateTime"] for r in phq9]
    assert len(dates) == 2 and dates == sorted(dates)
    claim = resources(cl08, "Claim")[0]
    timings = path(claim, "Claim.supportingInfo.where(code.coding.code = '44261-6').timingDate")
    assert timings == sorted(timings) and len(timings) == 2


def test_the_worksheet_answers_from_the_released_scores(cl08: UrPackage) -> None:
    worksheet = resources(cl08, "QuestionnaireResponse")[0]

    def answer(link_id: str) -> list[Any]:
        return path(worksheet, f"QuestionnaireResponse.repeat(item).where(linkId = '{link_id}').answer.value")

    phq9 = [
        r["valueQuantity"]["value"]
        for r in resources(cl08, "Observation")
        if path(r, "Observation.code.coding.code") == ["44261-6"]
    ]
    assert answer("phq9-latest") == [phq9[-1]]
    assert answer("phq9-change") == [phq9[-1] - phq9[0]]
    assert answer("plan-active") == [True]
    assert answer("goals-total") == [len(resources(cl08, "Goal"))]
    statuses = path(
        worksheet,
        "QuestionnaireResponse.item.item.where(linkId = 'goal-progress').item.where(linkId = 'goal-status')"
        ".answer.value.code",
    )
    assert answer("goals-achieved") == [statuses.count("achieved")]  # repeat() would merge equal items
    assert answer("dast10-latest") == []  # no substance-use group for a mental-health request


def test_the_package_is_deterministic(
    clinic_charts: dict[str, MappedChart], partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    first = build_package(
        clinic_charts["cl-12"], partners["granite-mutual"], make_request("cl-12"), audit=MemoryAudit()
    )
    again = build_package(
        clinic_charts["cl-12"], partners["granite-mutual"], make_request("cl-12"), audit=MemoryAudit()
    )
    assert fhir.dumps(first.bundle) == fhir.dumps(again.bundle)
    assert first.disclosure_id == again.disclosure_id


@pytest.mark.parametrize("client", ["cl-04", "cl-08", "cl-12", "cl-16"])
def test_the_package_is_valid_r4(
    clinic_charts: dict[str, MappedChart], partners: dict[str, Partner], make_request: RequestFactory, client: str
) -> None:
    package = build_package(
        clinic_charts[client], partners["granite-mutual"], make_request(client), audit=MemoryAudit()
    )
    validator.validate(package.bundle)
    for resource in resources(package):
        fhir.reference_validate(resource)


def test_only_an_insurer_partner_can_be_the_payer() -> None:
    peers = {p.id: p for p in load_partners(ROOT / "partners" / "local-peers.yaml", {})}
    with pytest.raises(UsageError, match="not an insurer"):
        check_payer(peers["northfield-psychiatry"], "northfield-psychiatry")
    with pytest.raises(UsageError, match="no partner"):
        check_payer(None, "nobody")


def test_scores_entered_in_error_are_left_out_and_never_scored(
    tmp_path: Any, partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    """A PHQ-9 the clinic withdrew (entered-in-error) is neither sent nor used by the worksheet (R4: not to be
    relied on; minimum necessary)."""
    from tests.ur.conftest import CLINIC, chart_of

    withdrawn = {
        "kind": "assessment",
        "id": "asm-08-phq9-withdrawn",
        "client": "cl-08",
        "program": "prog-omh",
        "instrument": "phq-9",
        "status": "entered-in-error",
        "administered_at": "2026-09-30T10:00:00-04:00",
        "administered_by": "pr-castillo",
        "answers": {str(i): 3 for i in range(1, 10)},
    }
    extra = tmp_path / "withdrawn.json"
    extra.write_text(fhir.dumps({"records": [withdrawn]}).decode())
    chart = chart_of("cl-08", CLINIC, extra)
    package = build_package(chart, partners["granite-mutual"], make_request("cl-08"), audit=MemoryAudit())
    statuses = [r["status"] for r in resources(package, "Observation")]
    assert "entered-in-error" not in statuses and statuses
    left_out = {e.resource: e.rule for e in package.excluded}
    withdrawn_keys = [key_of(r) for r in chart.resources if r.get("status") == "entered-in-error"]
    assert withdrawn_keys and all(left_out[k] == "MN-ENTERED-IN-ERROR" for k in withdrawn_keys)
    worksheet = resources(package, "QuestionnaireResponse")[0]
    latest = path(worksheet, "QuestionnaireResponse.repeat(item).where(linkId = 'phq9-latest').answer.value")
    assert latest == [7]  # the July review, not the withdrawn 27


def test_the_claim_carries_one_confidentiality_code_the_high_water_mark(
    clinic_charts: dict[str, MappedChart], partners: dict[str, Partner], make_request: RequestFactory
) -> None:
    package = build_package(
        clinic_charts["cl-03"], partners["granite-mutual"], make_request("cl-03"), audit=MemoryAudit()
    )
    for resource in resources(package, "Claim"):
        codes = [
            c["code"]
            for c in resource["meta"]["security"]
            if c["system"] == "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
        ]
        assert codes == ["R"]
