"""The two FHIR test peers do what the conformance tests will rely on.

Every `fhir_peer` test runs once per peer (ids [medplum] and [sekmet]); a `peer_features` marker narrows it to
the peers that have the feature (Medplum's validator checks required bindings and invariants, sekmet's doesn't).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.servers import client
from tests.servers.client import (
    STRICT_SEARCH,
    errors,
    read_back,
    request,
    resource_of,
    search_all,
    search_pages,
    validate,
)
from tests.servers.peers import Peer, start_peer

pytestmark = pytest.mark.integration

LOINC = "http://loinc.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MRN = "urn:oid:2.16.840.1.113883.3.4.5.6"  # an example MRN system


def patient(mrn: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": "Testperson", "given": ["Alex"]}],
        "gender": "female",
        "birthDate": "1990-04-01",
        **extra,
    }


def phq9_total(patient_ref: str, score: int = 12, when: str = "2024-03-01T10:00:00Z") -> dict[str, Any]:
    """A US Core "observation-survey"-like PHQ-9 total score."""
    return {
        "resourceType": "Observation",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-survey"]},
        "status": "final",
        "category": [
            {"coding": [{"system": OBS_CATEGORY, "code": "survey", "display": "Survey"}]},
        ],
        "code": {
            "coding": [
                {
                    "system": LOINC,
                    "code": "44261-6",
                    "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
                }
            ],
            "text": "PHQ-9 total score",
        },
        "subject": {"reference": patient_ref},
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": {"value": score, "system": "http://unitsofmeasure.org", "code": "{score}"},
    }


def create(peer: Peer, resource: dict[str, Any]) -> dict[str, Any]:
    return resource_of(request(peer, "POST", resource["resourceType"], resource, expect={201}))


def etag_version(response: httpx.Response) -> str:
    etag = response.headers["ETag"]
    assert etag.startswith('W/"') and etag.endswith('"'), etag
    return etag[3:-1]


# ---------------------------------------------------------------- capability, CRUD


def test_metadata_is_an_r4_capability_statement(fhir_peer: Peer) -> None:
    statement = resource_of(request(fhir_peer, "GET", "metadata", expect={200}))
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.0")
    types = {r["type"] for rest in statement["rest"] for r in rest.get("resource", [])}
    assert {"Patient", "Observation", "Consent"} <= types  # sekmet does not list QuestionnaireResponse


def test_create_read_vread(fhir_peer: Peer) -> None:
    response = request(fhir_peer, "POST", "Patient", patient("crud-1"), expect={201})
    created = resource_of(response)
    version = created["meta"]["versionId"]
    assert etag_version(response) == version
    assert response.headers["Location"].endswith(f"Patient/{created['id']}/_history/{version}")

    read = read_back(fhir_peer, "Patient", created["id"])
    assert read["identifier"] == created["identifier"]
    vread = resource_of(request(fhir_peer, "GET", f"Patient/{created['id']}/_history/{version}", expect={200}))
    assert vread["meta"]["versionId"] == version


def test_update_with_if_match_and_stale_version_412(fhir_peer: Peer) -> None:
    created = create(fhir_peer, patient("upd-1"))
    v1 = created["meta"]["versionId"]
    changed = {**created, "active": True}
    ok = request(fhir_peer, "PUT", f"Patient/{created['id']}", changed, headers={"If-Match": f'W/"{v1}"'}, expect={200})
    v2 = etag_version(ok)
    assert v2 != v1

    stale = request(
        fhir_peer,
        "PUT",
        f"Patient/{created['id']}",
        {**created, "active": False},
        headers={"If-Match": f'W/"{v1}"'},
        expect={412},
    )
    assert resource_of(stale)["resourceType"] == "OperationOutcome"
    assert read_back(fhir_peer, "Patient", created["id"])["meta"]["versionId"] == v2
    old = resource_of(request(fhir_peer, "GET", f"Patient/{created['id']}/_history/{v1}", expect={200}))
    assert "active" not in old


def test_update_as_create_with_client_id(fhir_peer: Peer) -> None:
    pid = str(uuid.uuid5(uuid.NAMESPACE_URL, "bh-tests/update-as-create"))
    request(fhir_peer, "PUT", f"Patient/{pid}", {**patient("uac-1"), "id": pid}, expect={201})
    again = request(fhir_peer, "PUT", f"Patient/{pid}", {**patient("uac-1"), "id": pid}, expect={200})
    assert resource_of(again)["id"] == pid


def test_delete_then_read_is_410_and_history_keeps_it(fhir_peer: Peer) -> None:
    created = create(fhir_peer, patient("del-1"))
    request(fhir_peer, "DELETE", f"Patient/{created['id']}", expect={200, 204})
    request(fhir_peer, "GET", f"Patient/{created['id']}", expect={410})
    request(fhir_peer, "DELETE", f"Patient/{created['id']}", expect={200, 204})  # idempotent
    assert search_all(fhir_peer, "Patient", {"identifier": f"{MRN}|del-1"}) == []

    history = resource_of(request(fhir_peer, "GET", f"Patient/{created['id']}/_history", expect={200}))
    methods = [entry["request"]["method"] for entry in history["entry"]]
    assert methods == ["DELETE", "POST"]  # newest first
    assert created["id"] in history["entry"][1]["fullUrl"]


def test_type_history_lists_every_change(fhir_peer: Peer) -> None:
    first = create(fhir_peer, patient("th-1"))
    create(fhir_peer, patient("th-2"))
    request(fhir_peer, "PUT", f"Patient/{first['id']}", {**first, "active": True}, expect={200})
    history = resource_of(request(fhir_peer, "GET", "Patient/_history", expect={200}))
    assert history["type"] == "history"
    assert len(history["entry"]) == 3


def test_writes_are_validated(fhir_peer: Peer) -> None:
    missing_status = {"resourceType": "Observation", "code": {"text": "x"}}
    rejected = request(fhir_peer, "POST", "Observation", missing_status, expect={400, 422})
    assert errors(resource_of(rejected))
    request(
        fhir_peer, "POST", "Observation", {**missing_status, "status": "final", "bogusElement": 1}, expect={400, 422}
    )


@pytest.mark.peer_features("required-bindings")
def test_writes_check_required_bindings(fhir_peer: Peer) -> None:
    rejected = request(fhir_peer, "POST", "Patient", patient("rb-1", gender="f"), expect={400, 422})
    assert any("gender" in str(i.get("expression")) for i in errors(resource_of(rejected)))


# ---------------------------------------------------------------- search


def test_search_pages_with_next_links(fhir_peer: Peer) -> None:
    pat = create(fhir_peer, patient("page-1"))
    ids = {create(fhir_peer, phq9_total(f"Patient/{pat['id']}", score=i))["id"] for i in range(7)}

    pages = list(search_pages(fhir_peer, "Observation", {"patient": pat["id"], "_count": "3"}))
    assert [len(p.get("entry", [])) for p in pages] == [3, 3, 1]
    found = {e["resource"]["id"] for p in pages for e in p["entry"]}
    assert found == ids
    assert pages[0]["total"] == 7
    assert all(e["fullUrl"].endswith(f"Observation/{e['resource']['id']}") for p in pages for e in p["entry"])


def test_search_include_patient(fhir_peer: Peer) -> None:
    pat = create(fhir_peer, patient("inc-1"))
    create(fhir_peer, phq9_total(f"Patient/{pat['id']}"))
    page = resource_of(
        request(
            fhir_peer,
            "GET",
            "Observation",
            params={"patient": pat["id"], "_include": "Observation:patient"},
            expect={200},
        )
    )
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in page["entry"]}
    assert modes == {("Observation", "match"), ("Patient", "include")}


def test_search_by_identifier_subject_code_date_and_last_updated(fhir_peer: Peer) -> None:
    pat = create(fhir_peer, patient("srch-1"))
    other = create(fhir_peer, patient("srch-2"))
    ref = f"Patient/{pat['id']}"
    early = create(fhir_peer, phq9_total(ref, when="2024-01-10T09:00:00Z"))
    late = create(fhir_peer, phq9_total(ref, when="2024-06-10T09:00:00Z"))
    create(fhir_peer, phq9_total(f"Patient/{other['id']}"))

    assert [p["id"] for p in search_all(fhir_peer, "Patient", {"identifier": f"{MRN}|srch-1"})] == [pat["id"]]
    by_subject = search_all(fhir_peer, "Observation", {"subject": ref, "code": f"{LOINC}|44261-6"})
    assert {o["id"] for o in by_subject} == {early["id"], late["id"]}
    recent = search_all(fhir_peer, "Observation", {"patient": pat["id"], "date": "ge2024-03-01"})
    assert [o["id"] for o in recent] == [late["id"]]
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(search_all(fhir_peer, "Observation", {"_lastUpdated": f"ge{since}"})) == 3
    assert search_all(fhir_peer, "Observation", {"_lastUpdated": "lt2000-01-01"}) == []


def test_unknown_search_parameter_is_rejected_with_strict_handling(fhir_peer: Peer) -> None:
    request(fhir_peer, "GET", "Observation", params={"no-such-param": "1"}, headers=STRICT_SEARCH, expect={400})


def test_questionnaire_response_round_trip(fhir_peer: Peer) -> None:
    pat = create(fhir_peer, patient("qr-1"))
    answer = {"valueCoding": {"system": LOINC, "code": "LA6569-3", "display": "Several days"}}
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": f"Patient/{pat['id']}"},
        "authored": "2024-03-01T10:00:00Z",
        "item": [{"linkId": "/44250-9", "answer": [answer]}],
    }
    created = create(fhir_peer, qr)
    assert read_back(fhir_peer, "QuestionnaireResponse", created["id"])["item"] == qr["item"]


# ---------------------------------------------------------------- conditional interactions


def test_conditional_create_if_none_exist(fhir_peer: Peer) -> None:
    headers = {"If-None-Exist": f"identifier={MRN}|cc-1"}
    first = request(fhir_peer, "POST", "Patient", patient("cc-1"), headers=headers, expect={201})
    second = request(fhir_peer, "POST", "Patient", patient("cc-1"), headers=headers, expect={200})
    assert resource_of(second)["id"] == resource_of(first)["id"]
    assert len(search_all(fhir_peer, "Patient", {"identifier": f"{MRN}|cc-1"})) == 1


def test_conditional_update_creates_then_updates(fhir_peer: Peer) -> None:
    params = {"identifier": f"{MRN}|cu-1"}
    created = request(fhir_peer, "PUT", "Patient", patient("cu-1"), params=params, expect={201})
    updated = request(fhir_peer, "PUT", "Patient", patient("cu-1", active=True), params=params, expect={200})
    assert resource_of(updated)["id"] == resource_of(created)["id"]
    assert resource_of(updated)["active"] is True


# ---------------------------------------------------------------- transaction and batch


def test_transaction_resolves_references_and_commits(fhir_peer: Peer) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    response = client.post_transaction(
        fhir_peer,
        [
            {**patient("tx-1"), "fullUrl": urn},
            phq9_total(urn),
        ],
    )
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"].split()[0] for e in response["entry"]] == ["201", "201"]
    pat_id = search_all(fhir_peer, "Patient", {"identifier": f"{MRN}|tx-1"})[0]["id"]
    observations = search_all(fhir_peer, "Observation", {"patient": pat_id})
    assert [o["subject"]["reference"] for o in observations] == [f"Patient/{pat_id}"]


def test_transaction_with_client_ids_is_idempotent(fhir_peer: Peer) -> None:
    pid = str(uuid.uuid5(uuid.NAMESPACE_URL, "bh-tests/tx-idempotent"))
    oid = str(uuid.uuid5(uuid.NAMESPACE_URL, "bh-tests/tx-idempotent/obs"))
    resources = [{**patient("tx-2"), "id": pid}, {**phq9_total(f"Patient/{pid}"), "id": oid}]
    client.post_transaction(fhir_peer, resources)
    client.post_transaction(fhir_peer, resources)
    assert read_back(fhir_peer, "Observation", oid)["subject"]["reference"] == f"Patient/{pid}"
    assert len(search_all(fhir_peer, "Patient", {"identifier": f"{MRN}|tx-2"})) == 1


def test_transaction_rolls_back_when_one_entry_is_invalid(fhir_peer: Peer) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    bad = {"resourceType": "Observation", "code": {"text": "no status"}, "subject": {"reference": urn}}
    bundle = client.transaction_bundle([{**patient("rb-tx"), "fullUrl": urn}, phq9_total(urn), bad])
    rejected = client.post_bundle(fhir_peer, bundle, expect={400, 422})
    assert errors(resource_of(rejected))
    assert search_all(fhir_peer, "Patient", {"identifier": f"{MRN}|rb-tx"}) == []
    assert search_all(fhir_peer, "Observation", {"code": f"{LOINC}|44261-6"}) == []


def test_batch_answers_each_entry(fhir_peer: Peer) -> None:
    bad = {"resourceType": "Observation", "code": {"text": "no status"}}
    bundle = client.transaction_bundle([patient("batch-1"), bad], bundle_type="batch")
    response = resource_of(client.post_bundle(fhir_peer, bundle))
    assert response["type"] == "batch-response"
    statuses = [int(e["response"]["status"].split()[0]) for e in response["entry"]]
    assert statuses[0] == 201
    assert 400 <= statuses[1] < 500
    assert len(search_all(fhir_peer, "Patient", {"identifier": f"{MRN}|batch-1"})) == 1


# ---------------------------------------------------------------- $validate


def test_validate_accepts_us_core_like_phq9(fhir_peer: Peer) -> None:
    outcome = validate(fhir_peer, phq9_total("Patient/example"))
    assert errors(outcome) == []


def test_validate_rejects_missing_required_element(fhir_peer: Peer) -> None:
    obs = phq9_total("Patient/example")
    del obs["status"]
    assert errors(validate(fhir_peer, obs))


@pytest.mark.peer_features("invariants")
def test_validate_rejects_value_and_data_absent_reason_obs6(fhir_peer: Peer) -> None:
    obs = {**phq9_total("Patient/example"), "dataAbsentReason": {"text": "asked but declined"}}
    issues = errors(validate(fhir_peer, obs))
    assert any("obs-6" in str(issue) for issue in issues)


@pytest.mark.peer_features("required-bindings")
def test_validate_rejects_status_outside_required_value_set(fhir_peer: Peer) -> None:
    issues = errors(validate(fhir_peer, {**phq9_total("Patient/example"), "status": "bogus"}))
    assert any("Observation.status" in str(issue.get("expression")) for issue in issues)


def test_validate_does_not_store(fhir_peer: Peer) -> None:
    validate(fhir_peer, phq9_total("Patient/example"))
    assert search_all(fhir_peer, "Observation") == []


# ---------------------------------------------------------------- harness


def test_reset_empties_the_peer(fhir_peer: Peer) -> None:
    create(fhir_peer, patient("reset-1"))
    fhir_peer.reset()
    assert search_all(fhir_peer, "Patient") == []
    assert resource_of(request(fhir_peer, "GET", "Patient/_history", expect={200})).get("entry", []) == []


@pytest.mark.parametrize("name", ["medplum", "sekmet"])
def test_peer_exits_when_its_stdin_closes(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """What keeps a peer from outliving a killed pytest: the kernel closes the pipe, the peer sees EOF."""
    started = start_peer(name, tmp_path_factory.mktemp(f"orphan-{name}"), attach=False)
    assert not isinstance(started, Peer)
    try:
        assert started.process.stdin is not None
        started.process.stdin.close()
        assert started.process.wait(timeout=10) == 0
    finally:
        started.stop()
