"""HAPI FHIR's JPA server as a third peer (tests/servers/hapi/, docs/conformance.md).

The conformance tests of test_conformance.py and the peer contract tests of test_peers.py that hold for HAPI
are imported and collected here a second time; ``FHIR_PEERS`` makes their ``fhir_peer`` run on HAPI (ids
``[hapi...]``). The test_peers tests left out are the ones HAPI answers differently; each difference is pinned
below. HAPI starts once per session (25-90 s, 1-2 GB), so everything here carries the ``hapi`` marker:
``pytest -m "not hapi"`` leaves it out.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conformance_helpers import history_total, snapshot, update_transaction

# Collected here again, on HAPI; the fixtures come along because the tests need them.
from tests.integration.test_conformance import (  # noqa: F401
    emitted,
    resource_types,
    test_every_emitted_resource_validates,
    test_transaction_is_accepted_and_reads_back_unchanged,
    test_update_transaction_sent_twice_is_idempotent,
)

# The peer contract, as for Medplum and sekmet. Left out, because HAPI differs (pinned below): stale If-Match
# (409, not 412), and the three that need a write to be validated (writes_are_validated, batch_answers_each_entry,
# transaction_rolls_back_when_one_entry_is_invalid); the peer_features ones name features HAPI lacks.
from tests.integration.test_peers import (  # noqa: F401
    test_conditional_create_if_none_exist,
    test_conditional_update_creates_then_updates,
    test_create_read_vread,
    test_delete_then_read_is_410_and_history_keeps_it,
    test_metadata_is_an_r4_capability_statement,
    test_questionnaire_response_round_trip,
    test_reset_empties_the_peer,
    test_search_by_identifier_subject_code_date_and_last_updated,
    test_search_include_patient,
    test_search_pages_with_next_links,
    test_transaction_resolves_references_and_commits,
    test_transaction_with_client_ids_is_idempotent,
    test_type_history_lists_every_change,
    test_unknown_search_parameter_is_rejected_with_strict_handling,
    test_update_as_create_with_client_id,
    test_validate_accepts_us_core_like_phq9,
    test_validate_does_not_store,
    test_validate_rejects_missing_required_element,
)
from tests.servers.client import errors, post_bundle, read_back, request, resource_of, search_all, validate
from tests.servers.peers import HAPI_DIR, Peer, hapi_command, log_tail

FHIR_PEERS = ("hapi",)
pytestmark = [pytest.mark.integration, pytest.mark.hapi]

PARTNER_PROFILE = HAPI_DIR / "partner-hapi-sandbox.yaml"
PUBLIC_SANDBOX = "https://hapi.fhir.org/baseR4"
MRN = "urn:oid:2.16.840.1.113883.3.4.5.6"


def patient(mrn: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}], "gender": "female", **extra}


# ---------------------------------------------------------------- the server


def test_it_is_hapi_r4(hapi_peer: Peer) -> None:
    statement = resource_of(request(hapi_peer, "GET", "metadata", expect={200}))
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["software"]["name"].startswith("HAPI FHIR")
    types = {r["type"] for rest in statement["rest"] for r in rest["resource"]}
    assert {"Patient", "Observation", "QuestionnaireResponse", "Consent", "Provenance"} <= types


def test_versions_are_integers_and_reset_empties_everything(fresh_hapi: Peer) -> None:
    created = request(fresh_hapi, "POST", "Patient", patient("hapi-1"), expect={201})
    assert created.headers["ETag"] == 'W/"1"'
    fresh_hapi.reset()
    assert search_all(fresh_hapi, "Patient") == []
    history = resource_of(request(fresh_hapi, "GET", "_history", expect={200}))
    assert history.get("entry", []) == []


def test_reference_to_a_missing_resource_is_refused(fresh_hapi: Peer) -> None:
    """HAPI checks referential integrity on write (the other peers do not): a client's Bundle must carry
    every resource its entries point at, as the mapping's do."""
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{uuid.uuid4()}"},
    }
    refused = request(fresh_hapi, "POST", "Observation", observation, expect={400})
    assert any("HAPI-1094" in str(issue.get("diagnostics")) for issue in errors(resource_of(refused)))


def test_write_is_not_checked_for_cardinality(fresh_hapi: Peer) -> None:
    """Unlike the other peers, HAPI (as the public sandbox: no request validation) stores a resource that
    lacks a required element; only $validate says so. test_conformance's rollback test relies on such a
    refusal, hence the HAPI form below."""
    no_status = {"resourceType": "Observation", "code": {"text": "x"}}
    request(fresh_hapi, "POST", "Observation", no_status, expect={201})
    assert errors(validate(fresh_hapi, no_status))


def test_transaction_with_one_failing_entry_changes_nothing(fresh_hapi: Peer, emitted: Any) -> None:  # noqa: F811
    """HAPI's form of test_conformance's rollback test: the last entry of a real client's update transaction
    points at a resource HAPI does not hold (referential integrity, HAPI-1094), after the earlier entries have
    updated resources shared with a preloaded client."""
    post_bundle(fresh_hapi, update_transaction(emitted["cl-02"].resources))
    types = sorted({r["resourceType"] for e in emitted.values() for r in e.resources})
    before, history_before = snapshot(fresh_hapi, types), history_total(fresh_hapi)
    resources = [dict(r) for r in emitted["cl-10"].resources]
    assert set(before) & {f"{r['resourceType']}/{r['id']}" for r in resources}, "cl-10 no longer updates cl-02's"
    assert resources[-1]["resourceType"] == "Provenance"  # the client's last entry: every other runs first
    missing = f"Patient/{uuid.uuid4()}"
    resources[-1]["target"] = [*resources[-1]["target"], {"reference": missing}]

    refused = post_bundle(fresh_hapi, update_transaction(resources), expect={400})

    assert missing in refused.text
    assert snapshot(fresh_hapi, types) == before
    assert history_total(fresh_hapi) == history_before


def test_stale_if_match_is_409_not_412(fresh_hapi: Peer) -> None:
    """FHIR says 412 Precondition Failed for a stale If-Match (http.html#concurrency); HAPI answers 409
    Conflict (HAPI-0989). A client that retries or reports on 412 must treat HAPI's 409 the same way."""
    created = resource_of(request(fresh_hapi, "POST", "Patient", patient("hapi-4"), expect={201}))
    changed = {**created, "active": True}
    request(fresh_hapi, "PUT", f"Patient/{created['id']}", changed, headers={"If-Match": 'W/"1"'}, expect={200})
    stale = request(fresh_hapi, "PUT", f"Patient/{created['id']}", changed, headers={"If-Match": 'W/"1"'}, expect={409})
    assert "HAPI-0989" in stale.text
    assert read_back(fresh_hapi, "Patient", created["id"])["meta"]["versionId"] == "2"


def test_client_assigned_uuid_ids_are_kept(fresh_hapi: Peer) -> None:
    pid = str(uuid.uuid5(uuid.NAMESPACE_URL, "bh-tests/hapi/client-id"))
    request(fresh_hapi, "PUT", f"Patient/{pid}", {**patient("hapi-2"), "id": pid}, expect={201})
    assert read_back(fresh_hapi, "Patient", pid)["id"] == pid


def test_unknown_search_parameter_is_400(hapi_peer: Peer) -> None:
    refused = request(hapi_peer, "GET", "Observation", params={"no-such-param": "1"}, expect={400})
    assert "HAPI-0524" in refused.text


def test_validate_reports_required_binding_and_invariant(hapi_peer: Peer) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "PHQ-9 total"},
        "valueInteger": 12,
        "dataAbsentReason": {"text": "declined"},
    }
    assert any("obs-6" in str(issue.get("diagnostics")) for issue in errors(validate(hapi_peer, observation)))
    outcome = validate(hapi_peer, {**patient("hapi-3"), "gender": "f"})
    assert errors(outcome), outcome


def test_peer_exits_when_its_stdin_closes(tmp_path: Path) -> None:
    """What keeps HAPI from outliving a killed pytest: the watcher thread starts before Spring does, so this
    needs no full start (which would cost another minute)."""
    log_path = tmp_path / "hapi.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            hapi_command(0), stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            time.sleep(2)  # past JVM start-up, into the Spring context
            assert process.poll() is None, log_tail(log_path)
            assert process.stdin is not None
            process.stdin.close()
            assert process.wait(timeout=20) == 0, log_tail(log_path)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


# ---------------------------------------------------------------- the partner profile


def test_partner_profile_targets_hapi_and_names_the_public_sandbox() -> None:
    text = PARTNER_PROFILE.read_text(encoding="utf-8")
    (partner,) = yaml.safe_load(text)["partners"]
    assert partner["role"] == "sandbox"
    assert partner["auth"] == {"type": "none"}
    assert partner["write_mode"] == "transaction"
    assert partner["max_entries"] >= 1
    assert partner["base_url"].startswith("http://127.0.0.1:") and partner["base_url"].endswith("/fhir")
    assert f"# base_url: {PUBLIC_SANDBOX}\n" in text  # one line to swap
    assert {"organization_npi", "name"} <= set(partner["recipient"])
    assert partner["purpose_of_use"] == "TREAT"
