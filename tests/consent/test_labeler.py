"""Step 1, labeling: codes, sources, propagation, existing labels, and the DS4P representation."""

from __future__ import annotations

from typing import Any

import pytest

from adapter import fhir
from adapter.consent import ProgramFacts, label
from adapter.consent.vocab import DS4P_BASIS
from adapter.mappings.context import MappingContext
from adapter.pipeline import MappedChart
from adapter.schema import validator
from tests.consent.harness import identifier_value, key

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _with(bundle: dict[str, Any], *resources: dict[str, Any], base: str) -> dict[str, Any]:
    return {**bundle, "entry": [*bundle["entry"], *({"fullUrl": f"{base}/{key(r)}", "resource": r} for r in resources)]}


def _by_identifier(labeled: Any, rtype: str, value: str) -> Any:
    node = next(n for n in labeled.graph if n.resource_type == rtype and identifier_value(n.resource) == value)
    return labeled.labels[node.key], labeled.resources[node.key]


def test_part2_from_source_not_codes(mapped: dict[str, MappedChart]) -> None:
    labeled = label(mapped["cl-03"].bundle)
    aud, _ = _by_identifier(labeled, "Condition", "dx-03-aud")  # F10.20 in the Part 2 program
    auditc, _ = _by_identifier(labeled, "QuestionnaireResponse", "asm-03-auditc")  # AUDIT-C in the MH unit
    mdd, _ = _by_identifier(labeled, "Condition", "dx-03-mdd")
    assert aud.part2 and {"SUD", "ETHUD"} <= aud.sensitivity and aud.confidentiality == "R"
    assert not auditc.part2 and {"SUD", "ETHUD"} <= auditc.sensitivity
    assert not mdd.part2 and {"MH", "PSY"} <= mdd.sensitivity
    assert any(b.rule == "LBL-PART2-SOURCE" for c, b in aud.basis if c == "42CFRPart2")


@pytest.mark.parametrize(("program", "part2"), [("prog-sud", True), ("prog-omh", False)])
def test_a_request_id_fragment_on_meta_source_keeps_the_program(
    program: str, part2: bool, mapped: dict[str, MappedChart], ctx: MappingContext
) -> None:
    # Stock HAPI FHIR stores meta.source as "<source>#<request id>": data read back from it keeps its program
    # (an unknown source would be treated as Part 2, over-restricting the mental-health unit's data).
    condition = {
        "resourceType": "Condition",
        "id": "dx-from-hapi",
        "meta": {"source": ctx.program_url(program) + "#Xq3kT0aW9f1bLmZp"},
        "code": {"text": "a condition without any sensitive code"},
        "subject": {"reference": "Patient/x"},
    }
    bundle = _with(mapped["cl-16"].bundle, condition, base=ctx.fhir_base)
    labels = label(bundle).labels["Condition/dx-from-hapi"]
    assert labels.part2 is part2
    assert not any(b.rule == "LBL-UNKNOWN-SOURCE" for _c, b in labels.basis)


def test_valuecoding_answers_are_read(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    answer = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-answer",
        "meta": {"source": ctx.program_url("prog-omh")},
        "status": "completed",
        "subject": {"reference": "Patient/x"},
        "item": [
            {"linkId": "1", "answer": [{"valueCoding": {"system": "http://snomed.info/sct", "code": "75544000"}}]}
        ],
    }
    bundle = _with(mapped["cl-16"].bundle, answer, base=ctx.fhir_base)
    labels = label(bundle).labels["QuestionnaireResponse/qr-answer"]
    assert {"SUD", "OPIOIDUD"} <= labels.sensitivity and not labels.part2


def test_existing_labels_are_kept_and_eth_read_as_sud(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    existing = [
        {"system": "http://hl7.org/fhir/v3/ActCode", "code": "ETH"},
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "HRELIABLE"},
    ]
    resource = {
        "resourceType": "Condition",
        "id": "partner-eth",
        "meta": {"source": ctx.program_url("prog-omh"), "security": existing},
        "subject": {"reference": "Patient/x"},
    }
    before = fhir.dumps(resource)
    labeled = label(_with(mapped["cl-16"].bundle, resource, base=ctx.fhir_base))
    labels, out = labeled.labels["Condition/partner-eth"], labeled.resources["Condition/partner-eth"]
    assert fhir.dumps(resource) == before
    assert out["meta"]["security"][:2] == existing  # untouched, first
    assert "SUD" in labels.sensitivity
    assert {(c["system"], c["code"]) for c in out["meta"]["security"]} >= {(ACT, "SUD")}


def test_labels_carry_their_basis_and_pass_both_validators(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        labeled = label(chart.bundle)
        for k, resource in labeled.resources.items():
            for coding in (resource.get("meta") or {}).get("security") or ():
                assert coding["extension"][0]["url"] == DS4P_BASIS
            if k in labeled.labels:
                validator.validate(resource)
        fhir.reference_validate(labeled.resources[next(iter(labeled.labels))])
    sample = label(mapped["cl-02"].bundle)
    for resource in list(sample.resources.values())[:10]:
        fhir.reference_validate(resource)


def test_directory_and_unchanged_resources_are_the_same_objects(mapped: dict[str, MappedChart]) -> None:
    bundle = mapped["cl-16"].bundle
    labeled = label(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in ("Organization", "Practitioner"):
            assert labeled.resources[key(resource)] is resource


def test_propagation_through_a_chain(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """Task -> ServiceRequest (reasonReference) -> Part 2 Condition: both reveal the Part 2 diagnosis."""
    bundle = mapped["cl-16"].bundle
    cud = next(e["resource"] for e in bundle["entry"] if identifier_value(e["resource"]) == "dx-16-cud")
    request = {
        "resourceType": "ServiceRequest",
        "id": "sr-chain",
        "meta": {"source": ctx.program_url("prog-omh")},
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/x"},
        "reasonReference": [{"reference": key(cud)}],
    }
    task = {
        "resourceType": "Task",
        "id": "task-chain",
        "meta": {"source": ctx.program_url("prog-omh")},
        "status": "requested",
        "intent": "order",
        "focus": {"reference": "ServiceRequest/sr-chain"},
    }
    labeled = label(_with(bundle, task, request, base=ctx.fhir_base))
    for k in ("ServiceRequest/sr-chain", "Task/task-chain"):
        assert labeled.labels[k].part2 and "SUD" in labeled.labels[k].sensitivity
        assert any(b.rule == "LBL-PROPAGATED" for _, b in labeled.labels[k].basis)


@pytest.mark.parametrize(("part2", "expected"), [(True, True), (False, False)])
def test_external_sources(part2: bool, expected: bool, mapped: dict[str, MappedChart]) -> None:
    partner = "https://partner.example.org/fhir/Organization/otp-1"
    resource = {
        "resourceType": "Observation",
        "id": "from-partner",
        "meta": {"source": partner},
        "status": "final",
        "code": {"text": "Urine drug screen"},
    }
    bundle = _with(mapped["cl-09"].bundle, resource, base="https://fhir.riverbend.example.org/fhir")
    labels = label(bundle, [ProgramFacts(partner, part2, "Partner OTP")]).labels["Observation/from-partner"]
    assert labels.part2 is expected
    unknown = label(bundle).labels["Observation/from-partner"]
    assert unknown.part2 and any(b.rule == "LBL-UNKNOWN-SOURCE" for _, b in unknown.basis)
