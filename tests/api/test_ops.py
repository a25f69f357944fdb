"""Operations routes: outbox status and retry, the audit trail (filters, paging), the request log, the probes."""

from __future__ import annotations

from unittest import mock

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from adapter.services import Services
from adapter.sync import outbox
from tests.api.conftest import NOW, TokenFactory, bearer


def test_outbox_counts_items_and_retry(client: TestClient, services: Services, token: TokenFactory) -> None:
    admin = bearer(token("clinic-admin"))
    outbox.enqueue(services.engine, "northfield-psychiatry", ["cl-01", "cl-02"], NOW.timestamp())
    [item, _other] = outbox.claim(services.engine, "test", NOW.timestamp(), limit=2)
    outbox.bury(services.engine, item, NOW.timestamp(), status=422, error="partner refused", outcome=None)

    status = client.get("/ops/outbox", headers=admin).json()
    assert status["counts"]["northfield-psychiatry"]["dead"] == 1
    assert status["counts"]["northfield-psychiatry"]["in-flight"] == 1
    assert status["counts"]["maple-street-primary-care"]["pending"] == 0
    dead = client.get("/ops/outbox", params={"state": "dead"}, headers=admin).json()["items"]
    assert [(i["id"], i["last_error"]) for i in dead] == [(item.id, "partner refused")]

    retried = client.post(f"/ops/outbox/{item.id}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    again = client.post(f"/ops/outbox/{item.id}/retry", headers=admin)
    assert again.status_code == 400  # only failed or dead items can be retried
    assert client.post("/ops/outbox/999999/retry", headers=admin).status_code == 404


def test_audit_trail_filters_and_pages(client: TestClient, token: TokenFactory) -> None:
    admin = bearer(token("clinic-admin"))
    for recipient in ("northfield-psychiatry", "1106944287"):
        body = {"client": "cl-02", "recipient": recipient, "purpose": "TREAT"}
        assert client.post("/disclosures", json=body, headers=admin).status_code == 200
    everything = client.get("/ops/audit", params={"_count": 500}, headers=admin).json()
    northfield = client.get("/ops/audit", params={"recipient": "northfield-psychiatry", "_count": 500}, headers=admin)
    by_npi = client.get("/ops/audit", params={"recipient": "1106944287", "_count": 500}, headers=admin).json()
    assert northfield.headers["content-type"].startswith("application/fhir+json")
    assert northfield.json()["total"] + by_npi["total"] == everything["total"] > 0
    withheld = client.get("/ops/audit", params={"outcome": "withheld", "_count": 500}, headers=admin).json()
    assert withheld["total"] and all(e["resource"]["outcome"] == "4" for e in withheld["entry"])
    assert client.get("/ops/audit", params={"client": "cl-01"}, headers=admin).json()["total"] == 0
    later = client.get("/ops/audit", params={"since": "2026-06-01T12:00:01Z"}, headers=admin).json()
    assert later["total"] == 0

    page = client.get("/ops/audit", params={"_count": 5, "_offset": 5}, headers=admin).json()
    assert len(page["entry"]) == 5
    assert [e["resource"]["id"] for e in page["entry"]] == [e["resource"]["id"] for e in everything["entry"][5:10]]
    next_link = next(link["url"] for link in page["link"] if link["relation"] == "next")
    assert "_offset=10" in next_link and "_count=5" in next_link


def test_request_log_lists_every_request(client: TestClient, services: Services, token: TokenFactory) -> None:
    admin_secret = token("clinic-admin")
    admin_id = admin_secret.partition(".")[0]
    client.get("/clients", headers=bearer(admin_secret))
    client.get("/clients")
    log = client.get("/ops/requests", params={"token": admin_id}, headers=bearer(admin_secret)).json()
    assert [(i["route"], i["status"]) for i in log["items"]] == [("/clients", 200)]
    refused = client.get("/ops/requests", params={"status": 401}, headers=bearer(admin_secret)).json()
    assert refused["items"][0]["refusal"] == "missing-token"


def test_ready_says_not_ready_without_detail(client: TestClient, services: Services) -> None:
    with mock.patch.object(services.engine, "connect", side_effect=OperationalError("SELECT 1", {}, Exception("x"))):
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["issue"][0]["diagnostics"] == "not ready"


@pytest.mark.parametrize("bound", ["since=0001-01-01T00:00:00%2B14:00", "until=9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize("route", ["/ops/requests", "/ops/audit"])
def test_an_instant_outside_utc_years_is_a_422_not_a_crash(
    client: TestClient, token: TokenFactory, route: str, bound: str
) -> None:
    response = client.get(f"{route}?{bound}", headers=bearer(token("clinic-admin")))
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"
