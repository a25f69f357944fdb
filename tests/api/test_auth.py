"""Authentication and authorization: who may call what, and every refusal is answered with an OperationOutcome
AND written to the request log."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from adapter.api.deps import PartnerCaller
from adapter.services import Services
from tests.api.conftest import NOW, TokenFactory, bearer


def _last_request(services: Services) -> dict[str, object]:
    _total, rows = services.requests.query(limit=1)
    return rows[0]


def _assert_outcome(response: object, status: int, code: str) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/fhir+json")  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code


def test_no_token_is_refused_with_a_challenge_and_audited(client: TestClient, services: Services) -> None:
    response = client.get("/clients/cl-01/fhir")
    _assert_outcome(response, 401, "login")
    assert response.headers["www-authenticate"].startswith("Bearer")
    row = _last_request(services)
    assert (row["status"], row["refusal"], row["route"]) == (401, "missing-token", "/clients/{client_id}/fhir")


def test_unknown_and_malformed_tokens_get_the_same_answer(client: TestClient, services: Services) -> None:
    forged = client.get("/clients", headers=bearer("bh-000000000000.not-the-secret"))
    garbage = client.get("/clients", headers=bearer("letmein"))
    assert forged.json() == garbage.json()
    _assert_outcome(forged, 401, "login")
    assert _last_request(services)["refusal"] == "malformed-token"


def test_a_right_id_with_a_wrong_secret_is_unknown(client: TestClient, services: Services, token: TokenFactory) -> None:
    secret = token("clinic-admin")
    token_id = secret.partition(".")[0]
    response = client.get("/clients", headers=bearer(f"{token_id}.guessed"))
    _assert_outcome(response, 401, "login")
    row = _last_request(services)
    assert row["refusal"] == "unknown-token"
    assert row["token_id"] is None  # an unproven id is not attributed to the token's owner


def test_a_revoked_token_is_refused_and_audited(client: TestClient, services: Services, token: TokenFactory) -> None:
    secret = token("clinic-admin")
    assert client.get("/clients", headers=bearer(secret)).status_code == 200
    services.tokens.revoke(secret.partition(".")[0], NOW)
    _assert_outcome(client.get("/clients", headers=bearer(secret)), 401, "login")
    row = _last_request(services)
    assert (row["refusal"], row["token_id"]) == ("revoked-token", secret.partition(".")[0])


def test_an_expired_token_is_refused_and_audited(client: TestClient, services: Services, token: TokenFactory) -> None:
    secret = token("clinic-admin", expires_at=NOW - timedelta(seconds=1))
    _assert_outcome(client.get("/clients", headers=bearer(secret)), 401, "login")
    assert _last_request(services)["refusal"] == "expired-token"
    fresh = token("clinic-admin", expires_at=NOW + timedelta(days=1))
    assert client.get("/clients", headers=bearer(fresh)).status_code == 200


def test_wrong_role_is_forbidden_and_audited(client: TestClient, services: Services, token: TokenFactory) -> None:
    ingest = token("ingest")
    _assert_outcome(client.get("/clients/cl-01/fhir", headers=bearer(ingest)), 403, "forbidden")
    partner = token("partner", "northfield-psychiatry")
    body = {"client": "cl-02", "recipient": "northfield-psychiatry", "purpose": "TREAT"}
    _assert_outcome(client.post("/disclosures", json=body, headers=bearer(partner)), 403, "forbidden")
    row = _last_request(services)
    assert (row["refusal"], row["role"], row["partner_id"]) == ("wrong-role", "partner", "northfield-psychiatry")


def _purpose_app(services: Services) -> TestClient:
    """The app plus one partner route that echoes the caller, so the purpose rules are tested on their own."""
    from adapter.api import create_app

    app: FastAPI = create_app(services)
    probe = APIRouter()

    @probe.get("/probe/partner")
    def whoami(caller: PartnerCaller) -> dict[str, object]:
        return {"partner": caller.partner_id, "purpose": caller.purpose, "purposes": list(caller.purposes)}

    app.include_router(probe)
    return TestClient(app)


def test_partner_purpose_comes_from_the_token(services: Services, token: TokenFactory) -> None:
    client = _purpose_app(services)
    secret = token("partner", "northfield-psychiatry", ["TREAT", "CAREMGT"])
    assert client.get("/probe/partner", headers=bearer(secret)).json()["purpose"] == "TREAT"
    chosen = client.get("/probe/partner", headers={**bearer(secret), "X-Purpose-Of-Use": "CAREMGT"})
    assert chosen.json() == {"partner": "northfield-psychiatry", "purpose": "CAREMGT", "purposes": ["TREAT", "CAREMGT"]}
    # A query parameter is never a source of purpose.
    assert client.get("/probe/partner?purpose=HPAYMT", headers=bearer(secret)).json()["purpose"] == "TREAT"


def test_a_purpose_the_partner_is_not_entitled_to_is_refused_and_audited(
    services: Services, token: TokenFactory
) -> None:
    client = _purpose_app(services)
    secret = token("partner", "northfield-psychiatry", ["TREAT"])
    response = client.get("/probe/partner", headers={**bearer(secret), "X-Purpose-Of-Use": "HPAYMT"})
    _assert_outcome(response, 403, "forbidden")
    row = _last_request(services)
    assert (row["status"], row["refusal"], row["partner_id"]) == (403, "purpose-not-entitled", "northfield-psychiatry")


def test_health_and_ready_need_no_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_tokens_are_stored_hashed(services: Services, token: TokenFactory) -> None:
    secret = token("ingest")
    with services.engine.connect() as conn:
        from sqlalchemy import text

        stored = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    assert stored and not any(secret.partition(".")[2] in str(row) for row in stored)


def test_only_the_probes_and_the_api_description_answer_without_a_token(client: TestClient) -> None:
    """docs/api.md: /health, /ready and the OpenAPI description (no data) are open; everything else needs a token."""
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    for path in ("/clients", "/ops/audit", "/ops/requests", "/fhir/metadata"):
        assert client.get(path).status_code == 401, path
