"""GET /clients and GET /clients/{id}/fhir: the clinic's own (unfiltered) view, JSON or XML, staff only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapter import fhir
from adapter.fhirxml.reader import from_xml
from adapter.services import Services
from tests.api.conftest import TokenFactory, bearer


def test_lists_the_stored_clients(client: TestClient, services: Services, token: TokenFactory) -> None:
    body = client.get("/clients", headers=bearer(token("clinic-admin"))).json()
    assert body["clients"] == services.client_ids()
    assert len(body["clients"]) == 16


def test_the_preview_is_the_mapped_bundle(client: TestClient, services: Services, token: TokenFactory) -> None:
    response = client.get("/clients/cl-03/fhir", headers=bearer(token("clinic-admin")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    mapped = services.mapped_chart("cl-03")
    assert mapped is not None
    assert response.json() == fhir.loads(fhir.dumps(mapped.bundle))


def test_xml_by_accept_and_by_format_round_trips(client: TestClient, token: TokenFactory) -> None:
    headers = bearer(token("clinic-admin"))
    as_json = client.get("/clients/cl-12/fhir", headers=headers).json()
    by_accept = client.get("/clients/cl-12/fhir", headers={**headers, "Accept": "application/fhir+xml"})
    by_format = client.get("/clients/cl-12/fhir", params={"_format": "xml"}, headers=headers)
    for response in (by_accept, by_format):
        assert response.headers["content-type"].startswith("application/fhir+xml")
        assert from_xml(response.content) == as_json
    # `_format` wins over Accept.
    mixed = client.get(
        "/clients/cl-12/fhir", params={"_format": "json"}, headers={**headers, "Accept": "application/fhir+xml"}
    )
    assert mixed.headers["content-type"].startswith("application/fhir+json")


def test_an_unknown_format_is_400_and_an_unknown_client_404(client: TestClient, token: TokenFactory) -> None:
    headers = bearer(token("clinic-admin"))
    bad_format = client.get("/clients/cl-12/fhir", params={"_format": "text/csv"}, headers=headers)
    assert bad_format.status_code == 400
    assert bad_format.json()["resourceType"] == "OperationOutcome"
    missing = client.get("/clients/cl-99/fhir", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["issue"][0]["code"] == "not-found"
    assert "cl-99" not in missing.text  # identifiers are not echoed in errors


def test_errors_follow_the_requested_format(client: TestClient, token: TokenFactory) -> None:
    response = client.get(
        "/clients/cl-99/fhir", headers={**bearer(token("clinic-admin")), "Accept": "application/fhir+xml"}
    )
    assert response.status_code == 404
    assert from_xml(response.content)["resourceType"] == "OperationOutcome"
