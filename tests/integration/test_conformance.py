"""FHIR conformance of the mapping output against the two test peers (issue 3).

What `bh-adapter map fixtures/clinic` emits (one collection Bundle per client, mapped once per session) goes to
both peers (docs/testing.md):

* **$validate**: every emitted resource, and each client's collection Bundle itself, must come back with zero
  error issues from each peer (`test_every_emitted_resource_validates`, one test per peer and client).
* **Transaction**: each client's resources go to each peer as ONE transaction Bundle of creates: `POST Type`,
  `fullUrl: urn:uuid:<our id>`, no `id` in the resource, and every internal reference `Type/<id>` rewritten to
  `urn:uuid:<id>`; the server assigns ids and rewrites the references to them (R4 http.html#trules). Why POST:
  Medplum refuses a transaction with more than 50 updates (PUT) and 4 fixture clients have more than 50
  resources, while creates do not count toward that limit; conditional entries would cap it at 8
  (`@medplum/fhir-router` batch.ts). Every reference the mapping emits points inside the client's own Bundle
  (it carries its practitioners and organizations), so nothing is left unrewritten.
  Sending this transaction twice creates everything twice: idempotent re-sending is what the PUT form is for,
  tested separately where the peer takes it (`test_update_transaction_sent_twice_is_idempotent`).
* **Read-back**: each entry is read at the `location` the transaction-response gave (Medplum: `Type/id`; sekmet:
  `[base]/Type/id/_history/1`, a vread), then compared with what was sent after dropping what the server owns
  (`id`, `meta.versionId`, `meta.lastUpdated`) and mapping our references through the response's id mapping;
  numbers compare by value (both peers drop trailing zeros, 14.50 -> 14.5; the fixtures' only decimals today are
  whole doses, MedicationRequest doseQuantity.value 1..50, which come back as the same integers). Both peers
  keep `meta.profile` and `meta.source` as sent (the mapping emits no `meta.security`), add nothing else, and
  keep element content unchanged (measured 2026-11-21: zero differences over all 601 resources on each peer).
* **Failing on purpose** (Medplum only: sekmet checks neither invariants nor required bindings): a real mapped
  resource broken one way (obs-6, con-4, con-5, ppc-1, a status or gender outside its required value set) is
  reported by $validate and refused on write.
* **Rollback**: a real client's transaction with its last entry missing a required element is refused by both
  peers and changes nothing already stored (no resource, version or history entry), in the create form and in
  the update form, where the earlier entries update resources shared with a preloaded client.

Timing (2-core machine, both peers, 2026-11-21): the module takes 15-20 s: mapping the fixtures 2 s, $validate
3 s per peer, transactions with read-back 2-3 s per peer, the PUT round trips 1 s (medplum) and 3 s (sekmet).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from adapter.pipeline import context, load, map_chart
from adapter.schema.definitions import elements
from adapter.settings import Settings
from tests.conftest import FIXTURES, GOLDEN
from tests.integration.conformance_helpers import (
    assigned_keys,
    create_transaction,
    differences,
    history_total,
    issue_lines,
    key,
    location_key,
    read_stored,
    snapshot,
    update_transaction,
)
from tests.servers.client import (
    PeerResponseError,
    Resource,
    entry_status,
    errors,
    post_bundle,
    request,
    resource_of,
    search_all,
    validate,
)
from tests.servers.peers import Peer
from tests.servers.push import MAX_UPDATES_PER_TRANSACTION

# Clients known without mapping at collection time: the golden files, which test_golden keeps equal to the
# mapped clients; test_every_fixture_client_is_covered checks the two agree.
CLIENT_IDS = sorted(path.stem for path in GOLDEN.glob("*.json"))


@dataclass(frozen=True)
class Emitted:
    """What `bh-adapter map` writes for one client: the collection Bundle and its entries' resources."""

    bundle: Resource
    resources: list[Resource]


@pytest.fixture(scope="session")
def emitted() -> dict[str, Emitted]:
    loaded = load([FIXTURES / "clinic"])
    ctx = context(loaded.clinic, Settings())
    charts = (map_chart(chart, ctx) for chart in loaded.clinic.charts)
    return {m.client_id: Emitted(m.bundle, [e["resource"] for e in m.bundle["entry"]]) for m in charts}


@pytest.fixture(scope="session")
def resource_types(emitted: dict[str, Emitted]) -> list[str]:
    """Every resource type the mapping emits: what a snapshot of a peer has to search."""
    return sorted({r["resourceType"] for e in emitted.values() for r in e.resources})


def accepted(peer: Peer, bundle: Mapping[str, Any]) -> Resource:
    """POST a transaction; its response, or a test failure that lists the peer's issues."""
    try:
        return resource_of(post_bundle(peer, bundle))
    except PeerResponseError as exc:
        lines = issue_lines(exc.outcome or {}) or [str(exc)]
        pytest.fail(f"{peer.name} refused the transaction:\n" + "\n".join(lines), pytrace=False)


def update_limit(peer: Peer) -> int | None:
    """Most PUT entries the peer takes in one transaction (Medplum's own limit; sekmet has none)."""
    return MAX_UPDATES_PER_TRANSACTION if peer.name == "medplum" else None


@pytest.mark.integration
def test_every_fixture_client_is_covered(emitted: dict[str, Emitted]) -> None:
    assert sorted(emitted) == CLIENT_IDS, "golden files and fixture clients differ: run pytest --update-golden"


# ---------------------------------------------------------------- $validate


@pytest.mark.parametrize("client_id", CLIENT_IDS)
def test_every_emitted_resource_validates(fhir_peer: Peer, emitted: dict[str, Emitted], client_id: str) -> None:
    client = emitted[client_id]
    found = [
        f"{key(resource)} {line}"
        for resource in [*client.resources, client.bundle]
        for line in issue_lines(validate(fhir_peer, resource))
    ]
    assert found == [], f"{fhir_peer.name} $validate errors in {client_id}:\n" + "\n".join(found)


# ---------------------------------------------------------------- transaction and read-back


@pytest.mark.parametrize("client_id", CLIENT_IDS)
def test_transaction_is_accepted_and_reads_back_unchanged(
    fhir_peer: Peer, emitted: dict[str, Emitted], resource_types: list[str], client_id: str
) -> None:
    resources = emitted[client_id].resources
    response = accepted(fhir_peer, create_transaction(resources))

    assert response["type"] == "transaction-response"
    assert [entry_status(e) for e in response["entry"]] == [201] * len(resources)
    changed = read_stored(fhir_peer, resources, response)
    assert changed == [], f"{fhir_peer.name} changed what it stored:\n" + "\n".join(
        f"{k}: {'; '.join(lines)}" for k, lines in changed
    )
    assert len(snapshot(fhir_peer, resource_types)) == len(resources), "the peer stored more than was sent"


def test_medplum_refuses_more_than_50_updates_in_one_transaction(
    fresh_medplum: Peer, emitted: dict[str, Emitted]
) -> None:
    """Why the transaction above is made of creates: the PUT form of the biggest clients does not fit."""
    too_big = [cid for cid, e in emitted.items() if len(e.resources) > MAX_UPDATES_PER_TRANSACTION]
    assert too_big, f"no client has more than {MAX_UPDATES_PER_TRANSACTION} resources any more: simplify"
    resources = emitted[max(too_big, key=lambda cid: len(emitted[cid].resources))].resources
    refused = post_bundle(fresh_medplum, update_transaction(resources), expect={400})
    assert any("more update operations than allowed" in line for line in issue_lines(resource_of(refused)))


def test_update_transaction_sent_twice_is_idempotent(
    fhir_peer: Peer, emitted: dict[str, Emitted], resource_types: list[str]
) -> None:
    """Every client that fits the peer's update limit, as PUT Type/<our id>, twice, without a reset in between:
    the second round answers 200 for every entry, stores nothing new and leaves the content as sent. Directory
    resources shared by several clients are updated by each of them, with the same content."""
    limit = update_limit(fhir_peer)
    clients = {cid: e.resources for cid, e in emitted.items() if limit is None or len(e.resources) <= limit}
    first = {cid: accepted(fhir_peer, update_transaction(res)) for cid, res in clients.items()}
    assert all(entry_status(e) in (200, 201) for response in first.values() for e in response["entry"])
    before = snapshot(fhir_peer, resource_types)
    assert set(before) == {key(r) for res in clients.values() for r in res}  # our ids kept, nothing else

    second = {cid: accepted(fhir_peer, update_transaction(res)) for cid, res in clients.items()}

    assert set(snapshot(fhir_peer, resource_types)) == set(before)
    for cid, resources in clients.items():
        assert [entry_status(e) for e in second[cid]["entry"]] == [200] * len(resources), cid
        assert assigned_keys(resources, second[cid]) == {key(r): key(r) for r in resources}
        assert read_stored(fhir_peer, resources, second[cid]) == [], cid


# ---------------------------------------------------------------- rollback

PRELOADED = "cl-02"  # stored first, with the update form (38 resources: fits Medplum's limit)
# Broken client per form. cl-10 (25 resources) shares 4 directory resources with cl-02, which its PUT entries
# update before the broken last entry fails; cl-16 is the biggest client (69 creates).
BROKEN = {"create": ("cl-16", create_transaction), "update": ("cl-10", update_transaction)}


def without_required_element(resource: Mapping[str, Any]) -> tuple[Resource, str]:
    """A copy missing its first required element (cardinality 1..: both peers check it); the element's name."""
    copied: Resource = copy.deepcopy(dict(resource))
    name = next(e.name for e in elements(resource["resourceType"]) if e.required and e.name in copied)
    del copied[name]
    return copied, name


@pytest.mark.parametrize("form", sorted(BROKEN))
def test_transaction_with_one_invalid_entry_changes_nothing(
    fhir_peer: Peer, emitted: dict[str, Emitted], resource_types: list[str], form: str
) -> None:
    accepted(fhir_peer, update_transaction(emitted[PRELOADED].resources))
    before, history_before = snapshot(fhir_peer, resource_types), history_total(fhir_peer)
    client_id, build = BROKEN[form]
    resources = list(emitted[client_id].resources)
    if form == "update":
        assert set(before) & {key(r) for r in resources}, f"{client_id} no longer updates what {PRELOADED} stored"
    resources[-1], element = without_required_element(resources[-1])  # last: every other entry runs first

    refused = post_bundle(fhir_peer, build(resources), expect={400, 422})

    lines = issue_lines(resource_of(refused))
    assert any(element in line for line in lines), lines
    assert snapshot(fhir_peer, resource_types) == before
    assert history_total(fhir_peer) == history_before


# ---------------------------------------------------------------- invalid on purpose (Medplum)


@dataclass(frozen=True)
class Breakage:
    """One way to break a real mapped resource, and what the strict peer must say about it."""

    resource_type: str
    applies: Callable[[Resource], bool]
    breaks: Callable[[Resource], None]
    expected: str  # part of an error line, "expression: text"


DAR_DECLINED = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "asked-declined"}]
}
ENTERED_IN_ERROR = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error"}]
}


def _has_value(resource: Resource) -> bool:
    return any(name.startswith("value") for name in resource)


def _active(resource: Resource) -> bool:
    return any(c.get("code") == "active" for c in resource.get("clinicalStatus", {}).get("coding", []))


def _drop_policies(resource: Resource) -> None:
    resource.pop("policy", None)
    resource.pop("policyRule", None)


# Invariants: obs-6 value[x] and dataAbsentReason; con-4 abated yet active; con-5 clinicalStatus on an
# entered-in-error Condition; ppc-1 a Consent with neither policy nor policyRule. The rest: required bindings.
BREAKAGES = {
    "obs-6": Breakage("Observation", _has_value, lambda r: r.update(dataAbsentReason=DAR_DECLINED), "obs-6"),
    "observation-status": Breakage(
        "Observation", lambda r: True, lambda r: r.update(status="bogus"), "Observation.status: Value bogus"
    ),
    "patient-gender": Breakage("Patient", lambda r: True, lambda r: r.update(gender="f"), "Patient.gender: Value f"),
    "questionnaire-response-status": Breakage(
        "QuestionnaireResponse", lambda r: True, lambda r: r.update(status="done"), "QuestionnaireResponse.status"
    ),
    "con-4": Breakage("Condition", _active, lambda r: r.update(abatementDateTime="2024-01-01"), "con-4"),
    "con-5": Breakage("Condition", _active, lambda r: r.update(verificationStatus=ENTERED_IN_ERROR), "con-5"),
    "ppc-1": Breakage("Consent", lambda r: True, _drop_policies, "ppc-1"),
}


def first_resource(emitted: Mapping[str, Emitted], resource_type: str, applies: Callable[[Resource], bool]) -> Resource:
    return next(r for e in emitted.values() for r in e.resources if r["resourceType"] == resource_type and applies(r))


@pytest.mark.peer_features("invariants", "required-bindings")
@pytest.mark.parametrize("case", list(BREAKAGES))
def test_resource_broken_on_purpose_is_refused(fhir_peer: Peer, emitted: dict[str, Emitted], case: str) -> None:
    breakage = BREAKAGES[case]
    original = first_resource(emitted, breakage.resource_type, breakage.applies)
    broken = copy.deepcopy(original)
    breakage.breaks(broken)
    assert errors(validate(fhir_peer, original)) == []  # the break, not the resource, is what fails

    reported = issue_lines(validate(fhir_peer, broken))
    refused = request(fhir_peer, "POST", broken["resourceType"], broken, expect={400, 422})

    assert any(breakage.expected in line for line in reported), reported
    assert any(breakage.expected in line for line in issue_lines(resource_of(refused)))
    assert search_all(fhir_peer, breakage.resource_type) == []


# ---------------------------------------------------------------- the helpers themselves (no peer)


def test_create_transaction_points_internal_references_at_urn_uuids() -> None:
    pid, oid = "0b7f1c4e-8a63-5a3e-9b7e-2f4c1d5e6a70", "1c8e2d5f-9b74-5b4f-8c8f-3a5d2e6f7b81"
    patient = {"resourceType": "Patient", "id": pid}
    observation = {
        "resourceType": "Observation",
        "id": oid,
        "subject": {"reference": f"Patient/{pid}"},
        "performer": [{"reference": "Practitioner/elsewhere"}],
    }
    entries = create_transaction([patient, observation])["entry"]
    assert [(e["fullUrl"], e["request"]) for e in entries] == [
        (f"urn:uuid:{pid}", {"method": "POST", "url": "Patient"}),
        (f"urn:uuid:{oid}", {"method": "POST", "url": "Observation"}),
    ]
    assert "id" not in entries[1]["resource"]
    assert entries[1]["resource"]["subject"] == {"reference": f"urn:uuid:{pid}"}
    assert entries[1]["resource"]["performer"] == [{"reference": "Practitioner/elsewhere"}]
    assert observation["subject"] == {"reference": f"Patient/{pid}"}  # the input is left alone


def test_differences_compare_numbers_by_value_and_name_the_place() -> None:
    sent: Sequence[Any] = [{"valueQuantity": {"value": Decimal("14.50")}, "code": {"text": "x"}}]
    assert differences(sent, [{"valueQuantity": {"value": Decimal("14.5")}, "code": {"text": "x"}}]) == []
    assert differences(sent, [{"valueQuantity": {"value": 14}, "code": {}}]) == [
        "[0].valueQuantity.value: 14.50 != 14",
        "[0].code.text: dropped",
    ]


@pytest.mark.parametrize(
    "location",
    ["Observation/abc", "http://127.0.0.1:1/fhir/Observation/abc/_history/1", "Observation/abc/_history/9f3e"],
)
def test_location_key(location: str) -> None:
    assert location_key(location) == "Observation/abc"
