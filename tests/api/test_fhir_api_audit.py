"""The partner FHIR API audits what an answer discloses, no more: one `released` AuditEvent per resource returned,
written before the answer is sent (fail closed), nothing for the charts the answer was computed from.

The release still runs on each candidate client's whole chart (labels and identity depend on it); its records
wait in the request's buffer and only those of returned resources reach the audit trail (45 CFR 164.528,
42 CFR 2.24: the accounting lists disclosures that happened).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adapter.consent import SqlAuditLog
from adapter.consent.audit_store import audit_events
from adapter.partner_api import carries_part2, is_notice
from adapter.services import Services
from tests.api.conftest import TestClient, TokenFactory
from tests.api.test_fhir_api import PCP, PSYCH, entries, expected_release, get, key, outcome_of, patient_id


def trail(services: Services) -> list[tuple[str, str, str]]:
    """(resource, patient, outcome) of every stored AuditEvent, in write order."""
    query = select(audit_events.c.resource, audit_events.c.patient, audit_events.c.outcome).order_by(
        audit_events.c.row_id
    )
    with services.engine.connect() as conn:
        return [(row.resource, row.patient, row.outcome) for row in conn.execute(query)]


def returned(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in page.get("entry", [])]


def test_a_count_zero_search_audits_nothing(client: TestClient, services: Services, token: TokenFactory) -> None:
    secret = token("partner", PSYCH)
    response = get(client, secret, f"/fhir/Observation?patient={patient_id(services, 'cl-09')}&_count=0")
    assert response.status_code == 200
    assert response.json()["total"] > 0 and "entry" not in response.json()
    assert trail(services) == []


def test_a_read_audits_that_resource_and_nothing_of_other_clients(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    secret = token("partner", PCP)
    released = expected_release(services, PCP, "TREAT", "cl-04")
    patient = f"Patient/{patient_id(services, 'cl-04')}"
    observation = next(k for k in released if k.startswith("Observation/"))
    assert get(client, secret, f"/fhir/{observation}").status_code == 200
    assert trail(services) == [(observation, patient, "released")]

    # A directory resource held by many charts: one record, the resource read, from the chart it was read from.
    practitioner = next(k for k in released if k.startswith("Practitioner/"))
    assert get(client, secret, f"/fhir/{practitioner}").status_code == 200
    after = trail(services)[1:]
    assert [(r, o) for r, _p, o in after] == [(practitioner, "released")]


def test_a_withheld_or_unknown_read_audits_nothing(client: TestClient, services: Services, token: TokenFactory) -> None:
    secret = token("partner", PCP, ["HOPERAT"])  # cl-03's Part 2 data has no consent: withheld for anyone
    chart = services.mapped_chart("cl-03")
    assert chart is not None
    released = expected_release(services, PCP, "HOPERAT", "cl-03")
    part2 = next(key(r) for r in chart.resources if r["resourceType"] == "Observation" and key(r) not in released)
    outcome_of(get(client, secret, f"/fhir/{part2}"), 404)
    outcome_of(get(client, secret, "/fhir/Observation/not-a-resource"), 404)
    assert trail(services) == []


def test_a_search_page_audits_exactly_its_entries(client: TestClient, services: Services, token: TokenFactory) -> None:
    secret = token("partner", PCP)
    pid = patient_id(services, "cl-08")
    url = f"/fhir/Observation?patient={pid}&_count=7&_include=Observation:derived-from&_include=Observation:patient"
    first = get(client, secret, url).json()
    keys = [key(r) for r in returned(first)]
    assert len(keys) > 7  # matches and includes
    assert trail(services) == [(k, f"Patient/{pid}", "released") for k in keys]

    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = get(client, secret, next_url).json()
    assert [r for r, _p, _o in trail(services)[len(keys) :]] == [key(r) for r in returned(second)]


def test_a_part2_page_audits_its_part2_entries_and_keeps_its_notice(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    secret = token("partner", PSYCH)  # cl-02's consent covers the psychiatry practice for treatment
    pid = patient_id(services, "cl-02")
    page = get(client, secret, f"/fhir/Observation?patient={pid}&_count=200").json()
    part2 = [key(r) for r in entries(page, "match") if carries_part2(r)]
    notices = [key(r) for r in entries(page, "include") if is_notice(r)]
    assert part2 and len(notices) == 1  # the 2.32 notice still travels with the Part 2 data
    audited = [r for r, _p, _o in trail(services)]
    # Every returned resource has its record; the notice, not a decision of the release, has none (as in a sync).
    assert audited == [key(r) for r in returned(page) if not is_notice(r)]
    assert set(part2) <= set(audited)


def test_an_audit_that_cannot_be_written_fails_the_answer_and_sends_nothing(
    client: TestClient, services: Services, token: TokenFactory, tmp_path: Any
) -> None:
    secret = token("partner", PCP)
    released = expected_release(services, PCP, "TREAT", "cl-04")
    observation = next(k for k in released if k.startswith("Observation/"))
    pid = patient_id(services, "cl-04")
    # Read by the API's first request: an audit store in a directory that does not exist cannot be written.
    services.audit = SqlAuditLog(f"sqlite:///{tmp_path / 'missing' / 'audit.db'}")
    for url in (f"/fhir/{observation}", f"/fhir/Observation?patient={pid}"):
        response = get(client, secret, url)
        body = outcome_of(response, 503)
        assert body["issue"][0]["code"] == "exception"
        assert observation.partition("/")[2] not in response.text and pid not in response.text
    # An answer that returns no resource has nothing to audit.
    assert get(client, secret, f"/fhir/Observation?patient={pid}&_count=0").status_code == 200
