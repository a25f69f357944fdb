"""No route of the partner-facing FHIR API returns more (or other) than the consent release point gives a sync.

For each partner and purpose, every client's resources as the API serves them (search by patient of every type
with every _include, `_id` searches of the directory types, reads, next links) are compared with what
`consent_release` (adapter/sync/release.py) sends that partner for that client: same keys, same content. Part 2:
fixtures/clinic cl-02 and cl-10 have consents that cover the local partners for treatment (not for operations);
cl-03 and cl-16 have Part 2 data and no covering consent.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from adapter import fhir
from adapter.api.limits import RateLimiter
from adapter.partner_api import carries_part2, is_notice
from adapter.partner_api.searchparams import SEARCH, patient_params
from adapter.services import Services
from tests.api.conftest import CLINIC, TestClient, TokenFactory
from tests.api.test_fhir_api import PCP, PSYCH, entries, expected_release, get, key, outcome_of, pages, patient_id

DIRECTORY = ("Organization", "Practitioner")
VIEWS = [(PCP, "TREAT"), (PSYCH, "TREAT"), (PCP, "HOPERAT")]


@pytest.fixture(autouse=True)
def unthrottled(app: FastAPI) -> None:
    """These tests walk every client through every route: far more requests than a token's default rate."""
    app.state.rate_limiter = RateLimiter(per_minute=1_000_000, burst=1_000_000)


def served(client: TestClient, secret: str, url: str) -> dict[str, Any]:
    """Every resource a search serves (matches and includes, every page). Asserts nothing is served twice as a
    match, and that an include never disagrees with the match of the same key."""
    out: dict[str, Any] = {}
    matched: list[str] = []
    for page in pages(client, secret, url):
        for mode in ("match", "include"):
            for resource in entries(page, mode):
                assert out.setdefault(key(resource), resource) == resource
                if mode == "match":
                    matched.append(key(resource))
    assert len(matched) == len(set(matched))
    return out


def served_client(client: TestClient, secret: str, services: Services, client_id: str) -> dict[str, Any]:
    """One client as the API serves it: every type by patient, with all its includes."""
    pid = patient_id(services, client_id)
    out: dict[str, Any] = {}
    for rtype in SEARCH:
        if rtype == "Patient":
            out |= served(client, secret, f"/fhir/Patient?_id={pid}&_include=Patient:organization")
        elif rtype not in DIRECTORY:
            assert patient_params(rtype), rtype
            includes = "".join(f"&_include={rtype}:{name}" for name in SEARCH[rtype])
            out |= served(client, secret, f"/fhir/{rtype}?patient={pid}&_count=200{includes}")
    return out


def as_json(resource: dict[str, Any]) -> Any:
    return fhir.loads(fhir.dumps(resource))


@pytest.mark.parametrize(("partner_id", "purpose"), VIEWS)
def test_every_client_is_served_exactly_as_a_sync_releases_it(
    client: TestClient, services: Services, token: TokenFactory, partner_id: str, purpose: str
) -> None:
    secret = token("partner", partner_id, [purpose])
    directory: dict[str, Any] = {}
    for client_id in services.client_ids():
        expected = expected_release(services, partner_id, purpose, client_id)
        got = served_client(client, secret, services, client_id)
        clinical = {k for k in expected if not k.startswith(DIRECTORY)}
        assert {k for k in got if not k.startswith(DIRECTORY)} == clinical, client_id
        assert set(got) <= set(expected), client_id  # includes come from the client's own release
        assert all(got[k] == as_json(expected[k]) for k in got), client_id
        directory |= {k: as_json(r) for k, r in expected.items() if k.startswith(DIRECTORY)}
    # Directory resources are shared: one withheld from a client's release as unreferenced may be released with
    # another's. An _id search serves exactly those some client's release holds.
    for rtype in DIRECTORY:
        ids = sorted({r["id"] for c in services.mapped_charts() for r in c.resources if r["resourceType"] == rtype})
        got = served(client, secret, f"/fhir/{rtype}?_id={','.join(ids)}&_count=200")
        assert got == {k: r for k, r in directory.items() if k.startswith(f"{rtype}/")}


@pytest.mark.parametrize("client_id", ["cl-02", "cl-03", "cl-10", "cl-16"])
@pytest.mark.parametrize(("partner_id", "purpose"), VIEWS)
def test_reads_answer_released_resources_and_hide_withheld_ones(
    client: TestClient, services: Services, token: TokenFactory, client_id: str, partner_id: str, purpose: str
) -> None:
    secret = token("partner", partner_id, [purpose])
    expected = expected_release(services, partner_id, purpose, client_id)
    chart = services.mapped_chart(client_id)
    assert chart is not None
    clinical = [r for r in chart.resources if r["resourceType"] not in DIRECTORY]
    withheld = [key(r) for r in clinical if key(r) not in expected]
    if purpose == "HOPERAT" or client_id in ("cl-03", "cl-16"):
        assert withheld  # Part 2 data without a covering consent
    for ref in withheld:
        body = outcome_of(get(client, secret, f"/fhir/{ref}"), 404)
        rtype, _, rid = ref.partition("/")
        absent = outcome_of(get(client, secret, f"/fhir/{rtype}/{rid[::-1]}"), 404)
        assert fhir.dumps(body).replace(rid.encode(), b"ID") == fhir.dumps(absent).replace(rid[::-1].encode(), b"ID")
    for ref in [k for k in expected if not is_notice(expected[k])][::5]:
        response = get(client, secret, f"/fhir/{ref}")
        assert response.status_code == 200 and response.json() == as_json(expected[ref])


@pytest.mark.parametrize(
    ("client_id", "covered"), [("cl-02", True), ("cl-10", True), ("cl-03", False), ("cl-16", False)]
)
@pytest.mark.parametrize("purpose", ["TREAT", "HOPERAT"])
def test_part2_travels_only_with_a_covering_consent_and_always_with_its_notice(
    client: TestClient, services: Services, token: TokenFactory, client_id: str, covered: bool, purpose: str
) -> None:
    secret = token("partner", PCP, [purpose])
    pid = patient_id(services, client_id)
    part2_seen = False
    for rtype in ("Condition", "Observation", "DocumentReference", "MedicationRequest", "Encounter"):
        for page in pages(client, secret, f"/fhir/{rtype}?patient={pid}&_count=3&_include={rtype}:patient"):
            resources = entries(page, "match") + entries(page, "include")
            if any(carries_part2(r) for r in resources):
                part2_seen = True
                notices = [r for r in resources if is_notice(r)]
                assert len(notices) == 1  # the 2.32 notice travels with every page that holds Part 2 data
                if rtype != "DocumentReference":
                    assert notices[0] in entries(page, "include")
    assert part2_seen == (covered and purpose == "TREAT")


def test_a_revoked_consent_takes_effect_on_the_next_request(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    secret = token("partner", PCP)
    pid = patient_id(services, "cl-02")
    url = f"/fhir/Condition?patient={pid}"
    before = [r for r in entries(get(client, secret, url).json(), "match") if carries_part2(r)]
    assert before
    revocations = [
        {**record, "revoked_at": "2026-05-01T10:00:00-04:00"}
        for record in _consent_records("cl-02")
        if record.get("part2")
    ]
    report, _ = services.ingest(  # the store is the source of truth: revoke through an ingest
        fhir.dumps({"records": revocations}), xml=False
    )
    assert report.accepted, report.problems
    after = entries(get(client, secret, url).json(), "match")
    assert not any(carries_part2(r) for r in after)
    assert outcome_of(get(client, secret, f"/fhir/{key(before[0])}"), 404)


def _consent_records(client_id: str) -> list[dict[str, Any]]:
    for path in sorted(CLINIC.glob("*.json")):
        data = fhir.loads(path.read_bytes())
        records = [r for r in data.get("records", []) if r.get("kind") == "consent" and r.get("client") == client_id]
        if records:
            return records
    raise AssertionError(client_id)
