"""POST /records: JSON and XML, single or batch; a batch is stored whole or not at all; sync is queued for every
client a stored batch changed."""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi.testclient import TestClient

from adapter.services import Services
from adapter.sync import outbox
from tests.api.conftest import TokenFactory, bearer
from tests.conftest import FIXTURES

XML = {"Content-Type": "application/xml"}


def _fixture_records(name: str) -> list[dict[str, Any]]:
    data = json.loads((FIXTURES / "clinic" / name).read_text())
    return list(data["records"] if isinstance(data, dict) else data)


def _new_client() -> list[dict[str, Any]]:
    """A new client cl-90 and a PHQ-9 for them, made from client cl-03's records."""
    source = {r["id"]: r for r in _fixture_records("03-depression-and-alcohol-use.json")}
    client = {**copy.deepcopy(source["cl-03"]), "id": "cl-90"}
    client["identifiers"] = [{**i, "value": i["value"] + "-90"} for i in client["identifiers"]]
    assessment = {**copy.deepcopy(source["asm-03-phq9"]), "id": "asm-90-phq9", "client": "cl-90"}
    del assessment["visit"]
    return [client, assessment]


def _stored(services: Services, kind: str, record_id: str) -> bool:
    return any(key == (kind, record_id) for key in services.records._stored()[1])


def test_a_good_batch_is_stored_and_queued_for_every_partner(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    response = client.post("/records", json={"records": _new_client()}, headers=bearer(token("ingest")))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (2, 0, 0)
    assert [(r["kind"], r["id"], r["outcome"]) for r in body["results"]] == [
        ("client", "cl-90", "created"),
        ("assessment", "asm-90-phq9", "created"),
    ]
    pushing = [p.id for p in services.partners.values() if p.push != "none"]
    assert body["sync_queued"] == len(pushing) >= 2
    for partner_id in pushing:
        assert [i.client_id for i in outbox.items(services.engine, partner_id=partner_id)] == ["cl-90"]
    assert "cl-90" in services.client_ids()


def test_re_sending_the_same_records_changes_nothing(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    version = services.records.version()
    records = _fixture_records("03-depression-and-alcohol-use.json")
    body = client.post("/records", json=records, headers=bearer(token("clinic-admin"))).json()
    assert body["unchanged"] == len(records) and body["created"] == body["updated"] == 0
    assert body["sync_queued"] == 0
    assert services.records.version() == version


def test_an_update_bumps_the_version_and_the_preview_shows_it(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    admin = bearer(token("clinic-admin"))
    before = client.get("/clients/cl-03/fhir", headers=admin).json()
    phq9 = next(r for r in _fixture_records("03-depression-and-alcohol-use.json") if r["id"] == "asm-03-phq9")
    phq9 = {**phq9, "answers": {**phq9["answers"], "9": 1}, "stated_total": 16}
    body = client.post("/records", json=phq9, headers=admin).json()
    assert [r["outcome"] for r in body["results"]] == ["updated"]
    after = client.get("/clients/cl-03/fhir", headers=admin).json()
    assert after != before


def test_one_bad_record_rejects_the_batch_naming_record_and_field(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    good, bad = _new_client()
    bad = {**bad, "answers": {**bad["answers"], "9": 7}}
    version = services.records.version()
    response = client.post("/records", json=[good, bad], headers=bearer(token("ingest")))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/fhir+json")
    issues = response.json()["issue"]
    assert any("record asm-90-phq9" in i["diagnostics"] and i.get("expression") == ["answers.9"] for i in issues), (
        issues
    )
    # Nothing of the batch is stored, the good client included, and no sync is queued.
    assert not _stored(services, "assessment", "asm-90-phq9")
    assert not _stored(services, "client", "cl-90")
    assert services.records.version() == version
    assert outbox.items(services.engine) == []


def test_a_dangling_link_is_rejected_with_its_field(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    _client, assessment = _new_client()
    response = client.post("/records", json=assessment, headers=bearer(token("ingest")))
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["client"] and "asm-90-phq9" in issue["diagnostics"]
    assert not _stored(services, "assessment", "asm-90-phq9")


def test_a_change_that_would_break_a_stored_record_is_rejected(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    # Moving a diagnosis to another client would leave cl-03's own records pointing across charts.
    dx = next(r for r in _fixture_records("03-depression-and-alcohol-use.json") if r["kind"] == "diagnosis")
    response = client.post("/records", json={**dx, "client": "cl-04"}, headers=bearer(token("ingest")))
    assert response.status_code == 422
    assert any("stored record would no longer be valid" in i["diagnostics"] for i in response.json()["issue"])


def test_malformed_json_is_422_without_echoing_the_input(client: TestClient, token: TokenFactory) -> None:
    response = client.post(
        "/records",
        content=b'{"kind": "client", "id": "secret-name-Sokolova"',
        headers={**bearer(token("ingest")), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Sokolova" not in response.text


def test_xml_records_are_ingested(client: TestClient, services: Services, token: TokenFactory) -> None:
    document = b"""<?xml version="1.0" encoding="UTF-8"?>
<records xmlns="urn:bh-fhir-adapter:records:1">
  <client><id>cl-91</id><program>prog-omh</program>
    <identifiers><system>https://riverbend.example.org/fhir/sid/mrn</system><value>RB-100091</value><type>MR</type></identifiers>
    <names><family>Example</family><given>Xml</given></names>
    <birth_date>1990-01-01</birth_date><gender>female</gender></client>
  <assessment><id>asm-91-gad7</id><client>cl-91</client><program>prog-omh</program><instrument>gad-7</instrument>
    <administered_at>2026-05-01T10:00:00-04:00</administered_at>
    <answers><answer item="1">1</answer><answer item="2">1</answer><answer item="3">1</answer>
      <answer item="4">1</answer><answer item="5">0</answer><answer item="6">0</answer>
      <answer item="7">0</answer></answers></assessment>
</records>"""
    response = client.post("/records", content=document, headers={**bearer(token("ingest")), **XML})
    assert response.status_code == 200, response.text
    assert [r["outcome"] for r in response.json()["results"]] == ["created", "created"]
    assert _stored(services, "assessment", "asm-91-gad7")


def test_a_shipped_xml_export_re_sent_is_unchanged(client: TestClient, token: TokenFactory) -> None:
    data = (FIXTURES / "clinic" / "12-ptsd-pcl5.xml").read_bytes()
    body = client.post("/records", content=data, headers={**bearer(token("ingest")), **XML}).json()
    assert body["results"] and all(r["outcome"] == "unchanged" for r in body["results"])


def test_an_xml_entity_bomb_is_refused_as_a_security_issue(client: TestClient, token: TokenFactory) -> None:
    data = (FIXTURES / "invalid" / "billion-laughs.xml").read_bytes()
    response = client.post("/records", content=data, headers={**bearer(token("ingest")), **XML})
    assert response.status_code == 422
    assert response.json()["issue"][0]["code"] in {"security", "invalid"}
    assert "DTD" in response.text or "entit" in response.text.lower()


def test_other_content_types_are_415(client: TestClient, token: TokenFactory) -> None:
    response = client.post(
        "/records", content=b"id,kind", headers={**bearer(token("ingest")), "Content-Type": "text/csv"}
    )
    assert response.status_code == 415
    assert response.json()["issue"][0]["code"] == "not-supported"
