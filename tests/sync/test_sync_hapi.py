"""The sync against the HAPI FHIR JPA server peer: a stricter server (referential integrity, its validator)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapter.pipeline import MappedChart
from adapter.sync.partners import load_partners
from tests.servers.peers import Peer
from tests.sync.peerutil import PSYCH_NPI, allowed, copy_records, history, partner_entry, sync, write_partners


def test_hapi_holds_what_consent_allows_once(fresh_hapi: Peer, tmp_path: Path, charts: list[MappedChart]) -> None:
    partners_file = write_partners(
        tmp_path / "partners.yaml",
        [partner_entry("hapi", "psychiatry", PSYCH_NPI, fresh_hapi.base_url, pull=["Task"], ids="client-ids")],
    )
    db = f"sqlite:///{tmp_path / 'sync.db'}"
    records = copy_records(tmp_path)
    first = sync(db, partners_file, records)
    (result,) = first.partners
    assert first.exit_code == 0, (result.error, result.push and result.push.errors[:3])
    held = history(fresh_hapi)
    (partner,) = load_partners(partners_file, {})
    expected, notices = allowed(charts, partner, datetime.now(UTC))
    assert expected <= set(held) and len(held) == len(expected) + notices
    assert set(held.values()) == {1}
    again = sync(db, partners_file, records)
    assert again.exit_code == 0 and history(fresh_hapi) == held
