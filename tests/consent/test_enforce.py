"""Step 3 and the release point: redaction, annotation, audit, fail-closed behaviour."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapter import fhir
from adapter.consent import AuditRecord, DisclosureRequest, Emergency, Identifier, SqlAuditLog, enforce
from adapter.consent.graph import reference_key
from adapter.consent.notice import notice_text
from adapter.errors import AuditError
from adapter.pipeline import MappedChart
from adapter.schema import validator
from adapter.terminology.systems import NPI
from tests.consent.harness import identifier_value, key, walk_references

MAPLE = Identifier(system=NPI, value="1384772053")
NORTHFIELD = Identifier(system=NPI, value="1728035910")
CVRH = Identifier(system=NPI, value="1106944287")
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _consents(chart: MappedChart) -> list[dict[str, Any]]:
    return [r for r in chart.resources if r["resourceType"] == "Consent"]


def _request(**kw: Any) -> DisclosureRequest:
    base: dict[str, Any] = {
        "recipient_organizations": (MAPLE,),
        "purpose": "TREAT",
        "instant": datetime.fromisoformat("2026-01-10T10:00:00-05:00"),
    }
    return DisclosureRequest(**(base | kw))


def _by_identifier(bundle: dict[str, Any], value: str) -> dict[str, Any] | None:
    return next((e["resource"] for e in bundle.get("entry", []) if identifier_value(e["resource"]) == value), None)


class FailingLog:
    def record(self, records: Sequence[AuditRecord]) -> None:
        raise AuditError("disk full")


def test_nothing_is_released_when_the_audit_fails(mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-02"]
    with pytest.raises(AuditError):
        enforce(chart.bundle, _request(), _consents(chart), audit=FailingLog())


def test_an_unwritable_store_is_an_audit_error(mapped: dict[str, MappedChart], tmp_path: Path) -> None:
    chart = mapped["cl-02"]
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = SqlAuditLog(f"sqlite:///{blocker / 'audit.db'}")
    with pytest.raises(AuditError) as caught:
        enforce(chart.bundle, _request(), _consents(chart), audit=log)
    assert "nothing was released" in str(caught.value)
    assert caught.value.exit_code == 8


def test_part2_disclosure_carries_notice_consent_copy_and_refrain(
    mapped: dict[str, MappedChart], audit_log: SqlAuditLog
) -> None:
    chart = mapped["cl-02"]
    disclosure = enforce(chart.bundle, _request(), _consents(chart), audit=audit_log)
    bundle = disclosure.bundle
    assert bundle["meta"]["security"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R", "display": "restricted"}
    ]
    condition = _by_identifier(bundle, "dx-02-oud")
    assert condition is not None
    codes = {(c["system"].rsplit("/", 1)[-1], c["code"]) for c in condition["meta"]["security"]}
    assert {("v3-ActCode", "42CFRPart2"), ("v3-ActCode", "NORDSCLCD"), ("v3-Confidentiality", "R")} <= codes
    notice = next(e["resource"] for e in bundle["entry"] if key(e["resource"]) == disclosure.notice)
    text = base64.b64decode(notice["content"][0]["attachment"]["data"]).decode()
    statement, _, _ = notice_text()
    assert text.startswith(statement)
    assert "cns-02-pcp" in text and "Maple Street Family Medicine" in text
    copy = _by_identifier(bundle, "cns-02-pcp")
    assert copy is not None and {"reference": key(copy)} in notice["context"]["related"]
    assert _by_identifier(bundle, "cns-02-tpo") is None  # not relied on: not disclosed
    fhir.reference_validate(notice)
    validator.validate(notice)


def test_audit_events_are_valid_and_complete(mapped: dict[str, MappedChart], audit_log: SqlAuditLog) -> None:
    chart = mapped["cl-02"]
    request = _request(
        recipient_organizations=(CVRH,),
        purpose="ETREAT",
        emergency=Emergency(description="suspected overdose", declared_by="ED attending"),
        recipient_is_medical_personnel=True,
    )
    disclosure = enforce(chart.bundle, request, [], audit=audit_log)
    events = audit_log.events(disclosure.id)
    assert len(events) == len(disclosure.decision.resources)
    outcomes = {e["outcome"] for e in events}
    assert outcomes == {"0", "4"}  # released and withheld (the counseling note) are both recorded
    for event in events:
        fhir.reference_validate(event)
        assert event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
        assert event["agent"][1]["who"]["identifier"]["value"] == CVRH.value
        details = {d["type"]: d["valueString"] for e in event["entity"] for d in e.get("detail", [])}
        assert details["emergency"] == "suspected overdose" and details["emergency-declared-by"] == "ED attending"


def test_references_to_withheld_data_are_removed_and_narrative_regenerated(
    mapped: dict[str, MappedChart], audit_log: SqlAuditLog
) -> None:
    """An explicit deny of one diagnosis code: the plan, goal and encounters that point at it stay, without the
    reference, and the plan's narrative is regenerated."""
    chart = mapped["cl-16"]
    patient = next(key(r) for r in chart.resources if r["resourceType"] == "Patient")
    deny = {
        "resourceType": "Consent",
        "id": "deny-f33",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "performer": [{"reference": patient}],
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentpolicycodes", "code": "hipaa-auth"}]
        },
        "provision": {
            "type": "deny",
            "code": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F331"}]}],
        },
    }
    bundle = {**chart.bundle, "entry": [*chart.bundle["entry"], {"resource": deny}]}
    request = _request(
        recipient_organizations=(NORTHFIELD,), instant=datetime.fromisoformat("2026-10-26T10:00:00-04:00")
    )
    disclosure = enforce(bundle, request, [deny], audit=audit_log)
    out = disclosure.bundle
    mdd = _by_identifier(chart.bundle, "dx-16-mdd")
    assert mdd is not None and _by_identifier(out, "dx-16-mdd") is None
    plan = _by_identifier(out, "plan-16-omh")
    original_plan = _by_identifier(chart.bundle, "plan-16-omh")
    assert plan is not None and original_plan is not None
    assert "addresses" in original_plan and "addresses" not in plan
    assert plan["text"]["status"] == "generated" and plan["text"] != original_plan["text"]
    text = fhir.dumps(out).decode()
    assert key(mdd) not in text  # no reference, anywhere, to the withheld diagnosis
    withheld = {w.resource: {r.rule for r in w.reasons} for w in disclosure.withheld}
    assert "DEC-CONSENT-DENY" in withheld[key(mdd)]


def test_bundle_total_is_honest(mapped: dict[str, MappedChart], audit_log: SqlAuditLog) -> None:
    chart = mapped["cl-16"]
    searchset = {
        **chart.bundle,
        "type": "searchset",
        "total": len(chart.bundle["entry"]),
        "entry": [{**e, "search": {"mode": "match"}} for e in chart.bundle["entry"]],
    }
    request = _request(
        recipient_organizations=(NORTHFIELD,), instant=datetime.fromisoformat("2026-10-26T10:00:00-04:00")
    )
    disclosure = enforce(searchset, request, _consents(chart), audit=audit_log)
    assert disclosure.bundle["type"] == "searchset"
    assert disclosure.bundle["total"] == len(disclosure.bundle["entry"]) < searchset["total"]
    validator.validate(disclosure.bundle)


def test_everything_withheld_gives_a_valid_empty_bundle(mapped: dict[str, MappedChart], audit_log: SqlAuditLog) -> None:
    chart = mapped["cl-02"]
    disclosure = enforce(chart.bundle, _request(recipient_organizations=(NORTHFIELD,)), [], audit=audit_log)
    assert "entry" not in disclosure.bundle and "meta" not in disclosure.bundle
    validator.validate(disclosure.bundle)
    fhir.reference_validate(disclosure.bundle)
    assert len(audit_log.events(disclosure.id)) == len(disclosure.decision.resources)


def test_mapped_resources_are_never_modified(mapped: dict[str, MappedChart], audit_log: SqlAuditLog) -> None:
    chart = mapped["cl-16"]
    before = [fhir.dumps(r) for r in chart.resources]
    enforce(
        chart.bundle,
        _request(
            recipient_organizations=(NORTHFIELD,),
            treating_relationship=True,
            instant=datetime.fromisoformat("2026-10-26T10:00:00-04:00"),
        ),
        _consents(chart),
        audit=audit_log,
    )
    assert [fhir.dumps(r) for r in chart.resources] == before


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="unknown purpose"):
        _request(purpose="NOPE")
    with pytest.raises(ValueError, match="name the recipient"):
        _request(recipient_organizations=())
    with pytest.raises(ValueError):
        _request(instant=datetime(2026, 1, 1))  # naive: the instant must carry its offset
    assert str(Identifier.parse("http://hl7.org/fhir/sid/us-npi|123")) == "http://hl7.org/fhir/sid/us-npi|123"


def test_notice_explains_each_consent_in_plain_words(mapped: dict[str, MappedChart], audit_log: SqlAuditLog) -> None:
    chart = mapped["cl-11"]
    request = _request(instant=datetime.fromisoformat("2026-02-10T10:00:00-05:00"))
    disclosure = enforce(chart.bundle, request, _consents(chart), audit=audit_log)
    notice = next(e["resource"] for e in disclosure.bundle["entry"] if key(e["resource"]) == disclosure.notice)
    text = base64.b64decode(notice["content"][0]["attachment"]["data"]).decode()
    assert "Maple Street Family Medicine, Dr. Kwame Osei for TREAT" in text
    assert "until 2026-12-31. Exception: Denies disclosure of psychotherapy note" in text
    assert "{" not in text  # no data structures leak into the text


def _entry_of(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return next(e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


def test_a_validated_input_still_has_what_the_release_point_changed_checked(mapped: dict[str, MappedChart]) -> None:
    """validated_input skips what the input vouches for, never what enforce built: a resource that differs from
    its input beyond meta, or a meta with a coding that is not the engine's own, is validated in full."""
    from adapter.consent.enforce import _unchanged_inputs, _validate
    from adapter.consent.graph import build
    from adapter.errors import FhirValidationError

    chart = mapped["cl-02"]
    graph = build(chart.bundle)
    observation = _entry_of(chart.bundle, "Observation")
    bad_status = {**observation, "resource": {**observation["resource"], "status": 7}}
    shell = {"resourceType": "Bundle", "type": "collection"}

    def check(entry: dict[str, Any]) -> None:
        _validate({**shell, "entry": [entry]}, [entry], _unchanged_inputs([entry], graph), validated_input=True)

    with pytest.raises(FhirValidationError):
        check(bad_status)
    foreign = {"system": "urn:x", "code": "R", "display": 5}  # not one of the engine's codings, and invalid
    meta = {**(observation["resource"].get("meta") or {}), "security": [foreign]}
    relabeled = {**observation, "resource": {**observation["resource"], "meta": meta}}
    with pytest.raises(FhirValidationError):
        check(relabeled)
    check(observation)  # as input: valid


def test_security_codings_are_built_once_and_known_valid() -> None:
    from adapter.consent.labeler import Basis, is_generated_coding, security_coding

    one = security_coding(ACT, "PSY", "psychiatry information sensitivity", Basis("LBL-CODE", "a detail"))
    again = security_coding(ACT, "PSY", "psychiatry information sensitivity", Basis("LBL-CODE", "another"))
    assert one is again and is_generated_coding(one)
    assert not is_generated_coding(dict(one))  # an equal copy is not vouched for


def test_a_dangling_reference_in_meta_or_text_is_a_defect(mapped: dict[str, MappedChart]) -> None:
    from adapter.consent.enforce import _check_references, _unchanged_inputs
    from adapter.consent.graph import build
    from adapter.errors import FhirValidationError

    chart = mapped["cl-02"]
    patient = _entry_of(chart.bundle, "Patient")
    ext = {"url": "http://example.org/x", "valueReference": {"reference": "Condition/not-disclosed"}}
    graph = build(chart.bundle)
    for meta in ({"extension": [ext]}, {"security": [{"extension": [ext], "system": ACT, "code": "PSY"}]}):
        tagged = {**patient, "resource": {**patient["resource"], "meta": meta}}
        with pytest.raises(FhirValidationError, match="dangling"):
            _check_references([tagged], _unchanged_inputs([tagged], graph))
    narrated = {**patient, "resource": {**patient["resource"], "text": {"extension": [ext], "status": "empty"}}}
    with pytest.raises(FhirValidationError, match="dangling"):
        _check_references([narrated], _unchanged_inputs([narrated], graph))


def test_the_consent_copy_goes_out_as_signed(mapped: dict[str, MappedChart], audit_log: SqlAuditLog) -> None:
    """42 CFR 2.32(b): the copy of the consent is the consent. A nested deny of one withheld diagnosis stays a deny
    of that diagnosis (pruning its reference would make it a deny of everything), named by a logical reference
    that does not dangle; the client's own narrative is kept."""
    chart = mapped["cl-11"]
    patient = next(key(r) for r in chart.resources if r["resourceType"] == "Patient")
    diagnosis = next(key(r) for r in chart.resources if identifier_value(r) == "dx-11-aud")
    maple = next(
        key(r)
        for r in chart.resources
        if r["resourceType"] == "Organization" and any(i.get("value") == MAPLE.value for i in r.get("identifier", []))
    )
    narrative = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>Share my records with Maple, except one diagnosis.</p></div>'
    )
    signed = {
        "resourceType": "Consent",
        "id": "cns-copy",
        "text": {"status": "additional", "div": narrative},
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "dateTime": "2026-01-05T10:00:00-05:00",
        "performer": [{"reference": patient}],
        "policyRule": {"coding": [{"system": ACT, "code": "42CFRPart2"}]},
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
                        ]
                    },
                    "reference": {"reference": maple},
                }
            ],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "provision": [{"type": "deny", "data": [{"meaning": "instance", "reference": {"reference": diagnosis}}]}],
        },
    }
    before = fhir.dumps(signed)
    entries = [e for e in chart.bundle["entry"] if e["resource"]["resourceType"] != "Consent"]
    bundle = {
        **chart.bundle,
        "entry": [
            *entries,
            {"fullUrl": "https://fhir.riverbend.example.org/fhir/Consent/cns-copy", "resource": signed},
        ],
    }
    request = _request(instant=datetime.fromisoformat("2026-02-10T10:00:00-05:00"))
    disclosure = enforce(bundle, request, [signed], audit=audit_log)
    assert fhir.dumps(signed) == before
    assert diagnosis not in disclosure.released
    copy = next(e["resource"] for e in disclosure.bundle["entry"] if key(e["resource"]) == "Consent/cns-copy")
    assert copy["text"] == signed["text"]
    assert {k: v for k, v in copy.items() if k not in ("meta", "provision")} == {
        k: v for k, v in signed.items() if k not in ("meta", "provision")
    }
    exception = copy["provision"]["provision"][0]
    assert exception["type"] == "deny"
    assert exception["data"] == [
        {
            "meaning": "instance",
            "reference": {
                "type": "Condition",
                "identifier": {
                    "system": "urn:ietf:rfc:3986",
                    "value": f"https://fhir.riverbend.example.org/fhir/{diagnosis}",
                },
            },
        }
    ]
    assert {k: v for k, v in copy["provision"].items() if k != "provision"} == {
        k: v for k, v in signed["provision"].items() if k != "provision"
    }
    validator.validate(disclosure.bundle)
    fhir.reference_validate(copy)
    assert all(reference_key(r, {}) != diagnosis for r in walk_references(disclosure.bundle))
