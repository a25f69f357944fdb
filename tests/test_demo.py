"""The README's first command: scripts/demo_sync.py maps the fixtures and syncs them to the two local partners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers.peers import Peer

ROOT = Path(__file__).resolve().parent.parent


def test_demo_syncs_every_client_to_both_partners(fresh_medplum: Peer, fresh_sekmet: Peer, tmp_path: Path) -> None:
    env = {**os.environ, "BH_MEDPLUM_URL": fresh_medplum.base_url, "BH_SEKMET_URL": fresh_sekmet.base_url}
    env.pop("BH_DATABASE_URL", None)
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo_sync.py"), "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert len(list(tmp_path.glob("cl-*.json"))) == 16  # the map step
    assert (tmp_path / "demo" / "adapter.db").is_file()  # a store of its own
    lines = run.stdout.splitlines()
    for partner, url in (
        ("northfield-psychiatry", fresh_medplum.base_url),
        ("maple-street-primary-care", fresh_sekmet.base_url),
    ):
        head = next(line for line in lines if line.startswith(f"{partner} ({url})"))
        assert " sent, " in head and "0 failed, 0 dead (16 client(s))" in head
    # Why something was withheld, in words: Part 2 data of a client without a consent for that partner.
    assert any("PT2-DEFAULT-DENY Part 2 data withheld without a covering consent" in line for line in lines)
