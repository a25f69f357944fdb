"""A partner reads from the partner-facing FHIR API the same content the sync sent it.

A few fixture clients are synced to the Medplum peer (through the real consent release point), then the same
partner reads those clients from /fhir (the API in process, on its own database seeded from the same records)
and every resource is compared with what the peer holds, ignoring what the peer owns (meta.versionId,
meta.lastUpdated) and the trailing zeros of decimals it drops (docs/testing.md, peer quirks). The 42 CFR 2.32
notices are minted per disclosure (new id per instant): they are compared by content, not by id.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapter.api import create_app
from adapter.partner_api import is_notice
from adapter.partner_api.searchparams import SEARCH, patient_params
from adapter.services import Services
from adapter.settings import Settings
from tests.api.conftest import TestClient
from tests.api.test_fhir_api import entries, key, pages
from tests.integration.conformance_helpers import comparable, differences
from tests.servers.client import request, resource_of
from tests.servers.peers import Peer
from tests.sync.conftest import CLINIC
from tests.sync.peerutil import PSYCH_NPI, history, partner_entry, sync, write_partners

# Part 2 data with a covering consent (02), scores with item answers (04), a treatment plan with goals (08).
FILES = ("directory.json", "02-oud-buprenorphine-part2.json", "04-phq9-item9-safety-plan.json")
FILES += ("08-measurable-treatment-plan.json",)
CLIENTS = ("cl-02", "cl-04", "cl-08")
DIRECTORY_TYPES = frozenset({"Organization", "Practitioner"})


@pytest.fixture
def records(tmp_path: Path) -> Path:
    target = tmp_path / "records"
    target.mkdir()
    for name in FILES:
        shutil.copyfile(CLINIC / name, target / name)
    return target


@pytest.fixture
def synced(fresh_medplum: Peer, tmp_path: Path, records: Path) -> Path:
    partners = write_partners(
        tmp_path / "partners.yaml", [partner_entry("psych", "psychiatry", PSYCH_NPI, fresh_medplum.base_url)]
    )
    result = sync(f"sqlite:///{tmp_path / 'sync.db'}", partners, records)
    assert result.exit_code == 0, [(p.partner.id, p.error) for p in result.partners]
    return partners


@pytest.fixture
def api(synced: Path, records: Path, tmp_path: Path) -> Iterator[tuple[TestClient, str, Services]]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}", partners_file=synced)
    services = Services.from_paths(settings, {}, [records], clock=lambda: datetime.now(UTC))
    _token, secret = services.tokens.create("partner", datetime.now(UTC), partner_id="psych", purposes=["TREAT"])
    with TestClient(create_app(services)) as client:
        yield client, secret, services
    services.close()


def _served(client: TestClient, secret: str, services: Services, client_id: str) -> dict[str, Any]:
    chart = services.mapped_chart(client_id)
    assert chart is not None
    pid = next(r["id"] for r in chart.resources if r["resourceType"] == "Patient")
    out: dict[str, Any] = {}
    for rtype in SEARCH:
        if rtype == "Patient":
            url = f"/fhir/Patient?_id={pid}"
        elif patient_params(rtype):
            includes = "".join(f"&_include={rtype}:{name}" for name in SEARCH[rtype])
            url = f"/fhir/{rtype}?patient={pid}&_count=200{includes}"
        else:
            continue  # directory types arrive as includes
        for page in pages(client, secret, url, **{"X-Purpose-Of-Use": "TREAT"}):
            out |= {key(r): r for r in entries(page, "match") + entries(page, "include")}
    return out


def test_the_api_serves_what_the_peer_was_sent(fresh_medplum: Peer, api: tuple[TestClient, str, Services]) -> None:
    client, secret, services = api
    held = set(history(fresh_medplum))
    held_notices = [
        comparable(r) for t, i in held if t == "DocumentReference" and is_notice(r := _read(fresh_medplum, t, i))
    ]
    compared = 0
    for client_id in CLIENTS:
        for ref, resource in _served(client, secret, services, client_id).items():
            rtype, _, rid = ref.partition("/")
            if is_notice(resource):
                # same notice text and labels, minted for another instant: compare without id, date, identifier
                assert any(not _notice_differences(resource, sent) for sent in held_notices), ref
                continue
            assert (rtype, rid) in held, f"{ref} served by the API but never sent to the partner"
            assert not differences(comparable(resource), comparable(_read(fresh_medplum, rtype, rid))), ref
            compared += 1
    assert compared > 100


def _read(peer: Peer, rtype: str, rid: str) -> dict[str, Any]:
    return resource_of(request(peer, "GET", f"{rtype}/{rid}"))


def _notice_differences(served: dict[str, Any], held: dict[str, Any]) -> list[str]:
    """A notice's content apart from what depends on the disclosure instant (id, identifier, dates)."""

    def stable(notice: dict[str, Any]) -> dict[str, Any]:
        out = comparable(notice)
        for name in ("identifier", "date"):
            out.pop(name, None)
        attachment = {k: v for k, v in out["content"][0]["attachment"].items() if k not in ("creation", "data")}
        return {**out, "content": [{**out["content"][0], "attachment": attachment}]}

    return differences(stable(served), stable(held))


def test_directory_resources_served_match_the_peer(fresh_medplum: Peer, api: tuple[TestClient, str, Services]) -> None:
    client, secret, services = api
    held = {k for k in history(fresh_medplum) if k[0] in DIRECTORY_TYPES}
    served = {
        ref: r
        for client_id in CLIENTS
        for ref, r in _served(client, secret, services, client_id).items()
        if r["resourceType"] in DIRECTORY_TYPES
    }
    assert served
    for ref, resource in served.items():
        rtype, _, rid = ref.partition("/")
        assert (rtype, rid) in held, ref
        assert not differences(comparable(resource), comparable(_read(fresh_medplum, rtype, rid))), ref
