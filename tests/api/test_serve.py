"""`bh-adapter serve` for real: a uvicorn process on a free loopback port, talked to over HTTP with httpx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapter.services import Services
from adapter.settings import Settings
from tests.api.served import served


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, admin token) of a running `bh-adapter serve` with the default seed."""
    database = f"sqlite:///{tmp_path / 'served.db'}"
    services = Services.open(Settings(database_url=database), {})
    _token, secret = services.tokens.create("clinic-admin", services.clock())
    services.close()
    with served({**os.environ, "BH_DATABASE_URL": database}) as (base, _process):
        yield base, secret


def test_the_served_api_answers_over_http(server: tuple[str, str]) -> None:
    base, secret = server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
        assert http.get("/ready").json() == {"status": "ready"}
        assert len(http.get("/clients").json()["clients"]) == 16  # seeded from fixtures/clinic
        bundle = http.get("/clients/cl-02/fhir")
        assert bundle.status_code == 200 and bundle.json()["resourceType"] == "Bundle"
        refused = httpx.get(f"{base}/clients", timeout=10)
        assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"
        disclosed = http.post("/disclosures", json={"client": "cl-02", "recipient": "1106944287", "purpose": "TREAT"})
        assert disclosed.status_code == 200
        assert http.get("/ops/requests", params={"status": 401}).json()["total"] == 1
