"""Helpers for the sync's integration tests: partners files for the peers, what a peer holds, runs."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from adapter.pipeline import MappedChart
from adapter.settings import Settings
from adapter.sync.commands import SyncOptions, SyncResult, run_sync
from adapter.sync.partners import Partner
from adapter.sync.push import is_notice
from adapter.sync.release import consent_release
from tests.servers.client import request, resource_of
from tests.servers.peers import Peer
from tests.sync.conftest import CLINIC, no_wait

PSYCH_NPI = "1728035910"  # org-northfield-psych
PCP_NPI = "1384772053"  # org-maple-fm


def partner_entry(pid: str, role: str, npi: str, base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "name": pid,
        "role": role,
        "base_url": base_url,
        "recipient": {"organization_npi": npi},
        "attested": {"treating_relationship": True},
        "pull": ["Task", "MedicationRequest", "Condition"],
        **extra,
    }


def write_partners(path: Path, entries: Sequence[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"partners": list(entries)}, sort_keys=False))
    return path


def two_partners(tmp: Path, medplum: Peer, sekmet: Peer, **extra: Any) -> Path:
    return write_partners(
        tmp / "partners.yaml",
        [
            partner_entry("psych", "psychiatry", PSYCH_NPI, medplum.base_url, **extra),
            partner_entry("pcp", "primary-care", PCP_NPI, sekmet.base_url, **extra),
        ],
    )


def copy_records(tmp: Path) -> Path:
    target = tmp / "records"
    shutil.copytree(CLINIC, target)
    return target


def sync(db_url: str, partners_file: Path, records: Path, **kwargs: Any) -> SyncResult:
    settings = Settings(database_url=db_url)
    kwargs.setdefault("retrying", no_wait)
    return run_sync(settings, SyncOptions(partners_file, [records]), {}, **kwargs)


def history(peer: Peer) -> Counter[tuple[str, str]]:
    """Versions per (type, id) on the peer: its whole system history, every page."""
    versions: Counter[tuple[str, str]] = Counter()
    url: str | None = "_history"
    params: dict[str, str] | None = {"_count": "1000"}
    while url:
        page = resource_of(request(peer, "GET", url, params=params))
        for entry in page.get("entry", []):
            r = entry.get("resource")
            if r:
                versions[(r["resourceType"], r["id"])] += 1
        url = next((link["url"] for link in page.get("link", []) if link.get("relation") == "next"), None)
        params = None
    return versions


def current(peer: Peer, key: tuple[str, str]) -> dict[str, Any]:
    return resource_of(request(peer, "GET", f"{key[0]}/{key[1]}"))


class NullAudit:
    def record(self, records: Sequence[Any]) -> None:
        return None


def allowed(charts: Sequence[MappedChart], partner: Partner, instant: Any) -> tuple[set[tuple[str, str]], int]:
    """What the consent engine releases of every chart to `partner`, computed independently of the sync:
    the keys, and apart the number of 42 CFR 2.32 notices (their ids change with the disclosure instant)."""
    release = consent_release(NullAudit())
    keys: set[tuple[str, str]] = set()
    notices = 0
    for chart in charts:
        for r in release(chart, partner, instant).resources:
            if is_notice(r):
                notices += 1
            else:
                keys.add((r["resourceType"], r["id"]))
    return keys, notices
