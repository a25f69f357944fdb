"""`bh-adapter serve --sync-every`: what POST /records ingests reaches a partner's FHIR server without anyone
running `bh-adapter sync` (a real uvicorn process, a real Medplum peer)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from adapter.fhir import deterministic_id
from adapter.services import Services
from adapter.settings import Settings
from tests.api.served import alive, served
from tests.servers.peers import Peer
from tests.sync.peerutil import PSYCH_NPI, history, partner_entry, write_partners

NEW_CLIENT = {
    "records": [
        {
            "kind": "client",
            "id": "cl-90",
            "program": "prog-omh",
            "identifiers": [
                {"system": "https://riverbend.example.org/fhir/sid/mrn", "value": "MRN-0090", "type": "MR"}
            ],
            "names": [{"family": "Served", "given": ["Quinn"]}],
            "birth_date": "1979-05-14",
            "gender": "other",
        },
        {
            "kind": "assessment",
            "id": "asm-90-phq9",
            "client": "cl-90",
            "program": "prog-omh",
            "instrument": "phq-9",
            "administered_at": "2026-05-20T10:00:00-04:00",
            "administered_by": "pr-castillo",
            "answers": {"1": 1, "2": 1, "3": 0, "4": 1, "5": 0, "6": 0, "7": 1, "8": 0, "9": 0},
        },
    ]
}


def test_ingested_records_reach_the_partner(fresh_medplum: Peer, tmp_path: Path) -> None:
    partners = write_partners(
        tmp_path / "partners.yaml", [partner_entry("psych", "psychiatry", PSYCH_NPI, fresh_medplum.base_url)]
    )
    database = f"sqlite:///{tmp_path / 'served.db'}"
    settings = Settings(database_url=database, partners_file=partners)
    services = Services.open(settings, {})
    _token, secret = services.tokens.create("ingest", services.clock())
    services.close()
    env = {**os.environ, "BH_DATABASE_URL": database, "BH_PARTNERS_FILE": str(partners)}
    patient = ("Patient", deterministic_id("Patient", "cl-90"))
    with served(env, "--sync-every", "1", "--seed", "fixtures/clinic", stop_timeout_s=90) as (base, process):
        assert patient not in history(fresh_medplum)
        ingested = httpx.post(
            f"{base}/records", json=NEW_CLIENT, headers={"Authorization": f"Bearer {secret}"}, timeout=30
        )
        assert ingested.status_code == 200, ingested.text
        deadline = time.monotonic() + 120
        while patient not in history(fresh_medplum):  # the worker's next pass (every second) sends it
            alive(process)
            assert time.monotonic() < deadline, "the sync worker did not deliver the ingested client"
            time.sleep(0.5)
        held = history(fresh_medplum)
        phq9_total = ("Observation", deterministic_id("Observation", "asm-90-phq9", "total"))
        assert held[patient] == 1 and held[phq9_total] == 1  # once, consent-checked like any sync
