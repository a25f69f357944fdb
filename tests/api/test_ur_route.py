"""`POST /ur-packages`: clinic staff get the PAS-shaped Bundle (JSON or XML) with the counts in headers; partners
are refused; bad input and unknown client/payer are OperationOutcomes; Part 2 data never leaves without consent."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapter import fhir
from adapter.fhirxml.reader import from_xml
from adapter.schema import validator
from tests.api.conftest import TokenFactory, bearer

BODY: dict[str, Any] = {
    "client": "cl-08",
    "payer": "granite-mutual",
    "service": "90837",
    "level_of_care": "mh-outpatient",
    "start": "2026-11-02",
    "end": "2026-12-31",
}


def test_clinic_admin_gets_the_package_with_counts(client: TestClient, token: TokenFactory) -> None:
    response = client.post("/ur-packages", json=BODY, headers=bearer(token("clinic-admin")))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = fhir.loads(response.content)
    validator.validate(bundle)
    assert bundle["entry"][0]["resource"]["use"] == "preauthorization"
    assert int(response.headers["X-Excluded-Count"]) > 0
    assert response.headers["X-Withheld-Count"] == "0"
    assert response.headers["X-Disclosure-Id"]


def test_the_package_as_xml(client: TestClient, token: TokenFactory) -> None:
    headers = bearer(token("clinic-admin")) | {"Accept": "application/fhir+xml"}
    response = client.post("/ur-packages", json=BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert from_xml(response.content)["entry"][0]["resource"]["resourceType"] == "Claim"


def test_a_partner_token_is_refused(client: TestClient, token: TokenFactory) -> None:
    secret = token("partner", partner_id="granite-mutual")
    response = client.post("/ur-packages", json=BODY, headers=bearer(secret))
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"


def test_unknown_client_and_payer_are_not_found(client: TestClient, token: TokenFactory) -> None:
    headers = bearer(token("clinic-admin"))
    for change in ({"client": "cl-99"}, {"payer": "nobody"}):
        response = client.post("/ur-packages", json=BODY | change, headers=headers)
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"


def test_bad_input_is_an_operation_outcome(client: TestClient, token: TokenFactory) -> None:
    headers = bearer(token("clinic-admin"))
    for change in ({"level_of_care": "spa-day"}, {"end": "2026-10-01"}, {"service": "not a code"}, {"extra": 1}):
        response = client.post("/ur-packages", json=BODY | change, headers=headers)
        assert 400 <= response.status_code < 500
        assert response.json()["resourceType"] == "OperationOutcome"


def test_no_part2_data_without_a_payment_consent(client: TestClient, token: TokenFactory) -> None:
    headers = bearer(token("clinic-admin"))
    mixed = client.post("/ur-packages", json=BODY | {"client": "cl-16", "level_of_care": "asam-2.1"}, headers=headers)
    assert mixed.status_code == 200, mixed.text
    labels = {
        c["code"]
        for e in fhir.loads(mixed.content)["entry"]
        for c in (e["resource"].get("meta") or {}).get("security") or ()
    }
    assert "42CFRPart2" not in labels
    assert int(mixed.headers["X-Withheld-Count"]) > 0
    wholly_part2 = client.post("/ur-packages", json=BODY | {"client": "cl-02"}, headers=headers)
    assert wholly_part2.status_code == 409
    assert wholly_part2.json()["resourceType"] == "OperationOutcome"


def test_a_package_is_built_now_the_body_names_no_instant(client: TestClient, token: TokenFactory) -> None:
    """cl-11's consent for Granite Mutual ended 2025-12-31: an instant from the body could have revived it."""
    body = {**BODY, "client": "cl-11", "at": "2025-12-15T12:00:00+00:00"}
    response = client.post("/ur-packages", json=body, headers=bearer(token("clinic-admin")))
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"
