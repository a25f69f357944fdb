"""The key clinical facts of the mapped fixtures, checked with FHIRPath the way a receiving system would read them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from adapter.pipeline import MappedChart
from adapter.terminology.catalog import instrument, instruments

R4 = models["r4"]
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
DOTTED_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")


def fp(resource: Any, path: str) -> list[Any]:
    return list(evaluate(resource, path, {}, R4))


def by_id(chart: MappedChart) -> dict[str, dict[str, Any]]:
    return {f"{r['resourceType']}/{r['id']}": r for r in chart.resources}


def administrations(chart: MappedChart) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(QuestionnaireResponse, the Observations derived from it) per assessment."""
    out = []
    for qr in fp(chart.bundle, "entry.resource.ofType(QuestionnaireResponse)"):
        ref = f"QuestionnaireResponse/{qr['id']}"
        derived = [
            r for r in chart.resources if r["resourceType"] == "Observation" and ref in fp(r, "derivedFrom.reference")
        ]
        out.append((qr, derived))
    return out


def _instrument_of(qr: dict[str, Any]) -> Any:
    panel = qr["questionnaire"].rsplit("/", 1)[-1]
    return next(i for i in instruments() if i.panel.code == panel)


def _item_of(inst: Any, obs: dict[str, Any]) -> Any:
    """The catalog item an Observation reports: by LOINC code, or by text for items LOINC does not code."""
    codes = fp(obs, "code.coding.code")
    if codes:
        return inst.item(codes[0])
    return next((i for i in inst.items if i.code is None and i.text == fp(obs, "code.text")[0]), None)


def _ordinal_of(item: Any, obs: dict[str, Any]) -> int:
    codes = fp(obs, "value.coding.code")
    option = (
        item.answers.by_code(codes[0])
        if codes
        else next(o for o in item.answers.options if o.display == fp(obs, "value.text")[0])
    )
    assert option is not None
    return int(option.value)


def test_every_instrument_in_the_catalog_is_exercised_by_the_fixtures(mapped: dict[str, MappedChart]) -> None:
    seen = {_instrument_of(qr).key for chart in mapped.values() for qr, _ in administrations(chart)}
    assert seen == {i.key for i in instruments()}


def test_panels_carry_members_not_values_and_totals_equal_the_item_scores(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        for qr, derived in administrations(chart):
            inst = _instrument_of(qr)
            panels = [o for o in derived if fp(o, "code.coding.code").count(inst.panel.code)]
            assert len(panels) == 1
            panel = panels[0]
            assert fp(panel, "value.exists()") == [False]
            members = set(fp(panel, "hasMember.reference"))
            assert members == {f"Observation/{o['id']}" for o in derived if o is not panel}
            if inst.total is None:
                continue
            item_scores = []
            for obs in derived:
                item = _item_of(inst, obs)
                if item is not None and item.scored:
                    item_scores.append(_ordinal_of(item, obs))
            totals = [o for o in derived if inst.total.code in fp(o, "code.coding.code")]
            if len(item_scores) == len(inst.scored_items):
                assert len(totals) == 1
                assert fp(totals[0], "value.value") == [sum(item_scores)]
                assert fp(totals[0], "value.code") == ["{score}"]
                assert fp(totals[0], "value.system") == ["http://unitsofmeasure.org"]
                band = inst.band_for(sum(item_scores))
                if band is not None:
                    assert band.display in fp(totals[0], "interpretation.text")
            else:
                # A missing item: no total under the total-score code, and the panel says why.
                assert totals == []
                assert fp(panel, "note.text")[0].startswith("Incomplete")


def test_phq9_with_a_missing_item_has_no_total(mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-05"]
    assert fp(chart.bundle, "entry.resource.ofType(Observation).where(code.coding.code='44261-6')") == []
    assert fp(chart.bundle, "entry.resource.ofType(Observation).where(code.coding.code='44249-1').note.exists()") == [
        True
    ]


def test_phq9_item9_positive_with_a_low_total_raises_a_high_priority_flag(mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-04"]
    total = fp(chart.bundle, "entry.resource.ofType(Observation).where(code.coding.code='44261-6').value.value")
    assert total and total[0] < 5
    item9 = fp(chart.bundle, "entry.resource.ofType(Observation).where(code.coding.code='44260-8')")[0]
    flags = fp(chart.bundle, "entry.resource.ofType(Flag)")
    phq_flag = [
        f
        for f in flags
        if f"Observation/{item9['id']}"
        in fp(f, "extension.where(url='http://hl7.org/fhir/StructureDefinition/flag-detail').value.reference")
    ]
    assert len(phq_flag) == 1
    assert fp(phq_flag[0], "status") == ["active"]
    assert fp(
        phq_flag[0], "extension.where(url='http://hl7.org/fhir/StructureDefinition/flag-priority').value.coding.code"
    ) == ["PH"]


def test_phq2_never_yields_a_phq9_total(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        for qr, derived in administrations(chart):
            if _instrument_of(qr).key == "phq-2":
                codes = {c for o in derived for c in fp(o, "code.coding.code")}
                assert "55758-7" in codes
                assert "44261-6" not in codes


def test_cssrs_reports_a_risk_level(mapped: dict[str, MappedChart]) -> None:
    inst = instrument("c-ssrs-screener")
    assert inst.risk_level is not None
    found = [
        o
        for chart in mapped.values()
        for o in fp(
            chart.bundle, f"entry.resource.ofType(Observation).where(code.coding.code='{inst.risk_level.code}')"
        )
    ]
    assert found and all(fp(o, "value.text") for o in found)


def test_conditions_are_dotted_icd10cm_problem_list_items(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        for cond in fp(chart.bundle, "entry.resource.ofType(Condition)"):
            assert fp(cond, "code.coding.system") == [ICD10CM]
            assert DOTTED_ICD10CM.match(fp(cond, "code.coding.code")[0])
            assert fp(cond, "category.coding.code") == ["problem-list-item"]
            if fp(cond, "abatement.exists()") == [True]:
                assert fp(cond, "clinicalStatus.coding.code")[0] in ("inactive", "remission", "resolved")


def test_referrals_are_a_service_request_with_a_task_that_carries_the_status(mapped: dict[str, MappedChart]) -> None:
    tasks = [t for chart in mapped.values() for t in fp(chart.bundle, "entry.resource.ofType(Task)")]
    assert tasks
    for chart in mapped.values():
        index = by_id(chart)
        for task in fp(chart.bundle, "entry.resource.ofType(Task)"):
            request = index[fp(task, "focus.reference")[0]]
            assert request["resourceType"] == "ServiceRequest"
            assert fp(task, "intent") == ["order"] and fp(task, "code.coding.code") == ["fulfill"]
            assert fp(task, "owner.reference") != fp(task, "requester.reference")
            assert fp(task, "priority") == fp(request, "priority")
            if fp(task, "status") == ["rejected"]:
                assert fp(task, "statusReason.text")
    urgent = fp(mapped["cl-06"].bundle, "entry.resource.ofType(ServiceRequest).where(intent='order').priority")
    assert urgent == ["urgent"]
    declined = fp(mapped["cl-07"].bundle, "entry.resource.ofType(Task).where(status='rejected')")
    assert len(declined) == 1


def test_measurable_goals_have_a_loinc_measure_a_threshold_and_a_due_date(mapped: dict[str, MappedChart]) -> None:
    goals = fp(mapped["cl-08"].bundle, "entry.resource.ofType(Goal).where(target.measure.exists())")
    assert len(goals) >= 2
    totals = {i.total.code for i in instruments() if i.total}
    for goal in goals:
        assert fp(goal, "target.measure.coding.code")[0] in totals
        assert fp(goal, "target.detail.comparator")[0] in ("<", "<=", ">", ">=")
        assert fp(goal, "target.detail.code") == ["{score}"]
        assert fp(goal, "target.due.exists()") == [True]
    plan = fp(mapped["cl-08"].bundle, "entry.resource.ofType(CarePlan).where(status='active')")[0]
    assert fp(plan, "category.coding.code")[0] == "assess-plan"
    assert fp(plan, "text.status") == ["generated"]
    assert fp(plan, "addresses.exists()") == [True] and fp(plan, "goal.exists()") == [True]


@pytest.mark.parametrize("client", ["cl-02", "cl-11"])
def test_part2_consents_cite_42cfr_part2_and_revoked_ones_are_inactive(
    mapped: dict[str, MappedChart], client: str
) -> None:
    consents = fp(mapped[client].bundle, "entry.resource.ofType(Consent)")
    assert consents
    for consent in consents:
        assert fp(consent, "scope.coding.code") == ["patient-privacy"]
        assert fp(consent, "provision.type") == ["permit"]
    assert any(fp(c, "policyRule.coding.code") == ["42CFRPart2"] for c in consents)
    if client == "cl-11":
        assert any(fp(c, "status") == ["inactive"] for c in consents)


def test_moud_and_pain_buprenorphine_are_told_apart_by_source(mapped: dict[str, MappedChart]) -> None:
    oud = fp(mapped["cl-02"].bundle, "entry.resource.ofType(MedicationRequest)")
    assert oud and all(
        fp(m, "medication.coding.system") == ["http://www.nlm.nih.gov/research/umls/rxnorm"] for m in oud
    )
    pain = mapped["cl-15"]
    assert fp(pain.bundle, "entry.resource.ofType(MedicationRequest)") == []
    statements = fp(pain.bundle, "entry.resource.ofType(MedicationStatement)")
    assert any("buprenorphine" in fp(s, "medication.text")[0].lower() for s in statements)
    assert all(
        fp(s, "informationSource.reference") == fp(pain.bundle, "entry.resource.ofType(Patient).id").copy()
        or fp(s, "informationSource.reference")[0].startswith("Patient/")
        for s in statements
    )


def test_visits_name_the_program_that_provided_them(mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-16"]
    index = by_id(chart)
    providers = set()
    for enc in fp(chart.bundle, "entry.resource.ofType(Encounter)"):
        org = index[fp(enc, "serviceProvider.reference")[0]]
        assert fp(org, "type.coding.code")[0] == "dept"
        providers.add(org["id"])
    assert len(providers) == 2  # a week across the mental-health unit and the Part 2 program
    assert fp(chart.bundle, "entry.resource.ofType(Encounter).where(class.code='VR')")
