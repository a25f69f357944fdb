"""`bh-adapter sync --from-store`: what the service ingested is what is synced (through the consent release)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapter.services import Services
from adapter.sync.commands import SyncOptions, run_sync
from tests.api.conftest import TokenFactory, bearer
from tests.api.test_records import _new_client
from tests.sync.fakefhir import FakeFhir

PARTNER = """
partners:
  - id: fake-peer
    name: Fake Psychiatry
    role: psychiatry
    base_url: http://fake.test/fhir
    recipient: {organization_npi: "1728035910"}
    purpose_of_use: TREAT
    attested: {treating_relationship: true}
    auth: {type: none}
    push: all
    pull: []
"""


def test_sync_from_the_store_sends_an_ingested_client(
    client: TestClient, services: Services, token: TokenFactory, tmp_path: Path
) -> None:
    assert client.post("/records", json=_new_client(), headers=bearer(token("ingest"))).status_code == 200
    partners_file = tmp_path / "partners.yaml"
    partners_file.write_text(PARTNER)
    fake = FakeFhir()
    options = SyncOptions(partners_file, [], from_store=True, partner_id="fake-peer")
    result = run_sync(services.settings, options, {}, transport=fake.transport())
    assert result.input_problems == []
    assert result.clients == len(services.client_ids()) == 17  # the 16 seeded clients and cl-90
    patients = [r for (kind, _id), r in fake.store.items() if kind == "Patient"]
    mapped = services.mapped_chart("cl-90")
    assert mapped is not None
    ingested = next(r for r in mapped.resources if r["resourceType"] == "Patient")
    assert any(p["id"] == ingested["id"] or p.get("identifier") == ingested.get("identifier") for p in patients)
