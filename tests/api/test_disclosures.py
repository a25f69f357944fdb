"""POST /disclosures: the consent-enforced Bundle and the decision report; 42 CFR Part 2 data is withheld without a
covering consent and released once the clinic ingests one; every decision lands in the audit trail."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapter.services import Services
from tests.api.conftest import TokenFactory, bearer

CVRH = "org-cvrh"  # a hospital in the directory that no consent of cl-02 names


def _disclose(http: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = http.post("/disclosures", json=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _released_keys(bundle: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])}


def test_part2_is_withheld_without_consent_and_released_with_it(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    admin = bearer(token("clinic-admin"))
    refused = _disclose(client, admin, client="cl-02", recipient=CVRH, purpose="TREAT")
    conditions = {
        w["resource"]
        for w in refused["report"]["withheld"]
        if w["resource"].startswith("Condition/") and any(r["rule"] == "PT2-DEFAULT-DENY" for r in w["reasons"])
    }
    assert conditions  # the OUD diagnosis of the Part 2 program
    assert not conditions & _released_keys(refused["bundle"])

    consent = {
        "kind": "consent",
        "id": "cns-02-cvrh",
        "client": "cl-02",
        "program": "prog-sud",
        "grantor": {"party": "client"},
        "recipients": [{"organization": CVRH}],
        "purposes": ["TREAT"],
        "categories_permitted": ["substance-use"],
        "period": {"start": "2026-05-01"},
        "signed_at": "2026-05-01T10:00:00-04:00",
        "part2": True,
        "description": "Disclose my substance use disorder treatment records to the hospital for my treatment.",
    }
    assert client.post("/records", json=consent, headers=admin).status_code == 200
    released = _disclose(client, admin, client="cl-02", recipient=CVRH, purpose="TREAT")
    assert conditions <= _released_keys(released["bundle"])
    assert any(c["consent"].startswith("cns-02-cvrh") for c in released["report"]["consents"])
    assert "NORDSCLCD" in released["report"]["obligations"]


def test_every_decision_is_audited_and_the_report_counts_them(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    admin = bearer(token("clinic-admin"))
    result = _disclose(client, admin, client="cl-02", recipient="northfield-psychiatry", purpose="TREAT")
    report = result["report"]
    decided = len(report["released"]) - (1 if report["notice"] else 0) + len(report["withheld"])  # notice: no decision
    assert report["audit_records"] == decided
    trail = client.get("/ops/audit", params={"client": "cl-02", "_count": 500}, headers=admin).json()
    assert trail["total"] == report["audit_records"]
    assert report["text"][0] == f"Disclosure {report['id']}"
    assert report["instant"] == "2026-06-01T12:00:00+00:00"  # the service's clock, since no `at` was given


def test_an_emergency_disclosure_is_recorded_as_one(client: TestClient, token: TokenFactory) -> None:
    admin = bearer(token("clinic-admin"))
    result = _disclose(
        client,
        admin,
        client="cl-02",
        recipient=CVRH,
        purpose="ETREAT",
        emergency="unresponsive after suspected overdose",
        recipient_is_medical_personnel=True,
    )
    assert result["report"]["emergency"] == "unresponsive after suspected overdose"
    assert result["report"]["released"]


def test_unknown_client_recipient_or_purpose_are_refused(client: TestClient, token: TokenFactory) -> None:
    admin = bearer(token("clinic-admin"))
    unknown_client = client.post(
        "/disclosures", json={"client": "cl-99", "recipient": CVRH, "purpose": "TREAT"}, headers=admin
    )
    assert unknown_client.status_code == 404
    unknown_recipient = client.post(
        "/disclosures", json={"client": "cl-02", "recipient": "nobody", "purpose": "TREAT"}, headers=admin
    )
    assert unknown_recipient.status_code == 422
    assert unknown_recipient.json()["issue"][0]["expression"] == ["recipient"]
    bad_purpose = client.post(
        "/disclosures", json={"client": "cl-02", "recipient": CVRH, "purpose": "GOSSIP"}, headers=admin
    )
    assert bad_purpose.status_code == 422
    assert bad_purpose.json()["resourceType"] == "OperationOutcome"


def test_a_disclosure_happens_now_the_body_names_no_instant(client: TestClient, token: TokenFactory) -> None:
    """An instant from the body would let an expired consent release data today and file the disclosure under
    another date: the API refuses the field."""
    body = {"client": "cl-11", "recipient": "granite-mutual", "purpose": "HPAYMT", "at": "2025-12-15T12:00:00+00:00"}
    response = client.post("/disclosures", json=body, headers=bearer(token("clinic-admin")))
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "at" in response.text
