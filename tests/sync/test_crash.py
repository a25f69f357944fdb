"""A worker killed with SIGKILL mid-send: the next one completes the run, nothing lost, nothing duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from adapter.pipeline import MappedChart
from adapter.sync import outbox
from adapter.sync.partners import load_partners
from adapter.sync.store import open_store
from tests.conftest import ROOT
from tests.servers.peers import Peer
from tests.sync.faultproxy import FaultProxy
from tests.sync.peerutil import PCP_NPI, allowed, copy_records, history, partner_entry, write_partners

DEADLINE_S = 120


def worker(db: str, partners_file: Path, records: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sync.worker_proc", db, str(partners_file), str(records), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[str]) -> str:
    """SIGKILL the worker's process group (if still running); its output, pipes closed."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return out or ""


def test_sigkill_mid_send_then_restart(fresh_sekmet: Peer, tmp_path: Path, charts: list[MappedChart]) -> None:
    root = urlsplit(fresh_sekmet.root_url)
    with FaultProxy(root.hostname or "127.0.0.1", root.port or 80, slow_s=0.8) as proxy:
        base = proxy.url(urlsplit(fresh_sekmet.base_url).path)
        partners_file = write_partners(
            tmp_path / "partners.yaml", [partner_entry("pcp", "primary-care", PCP_NPI, base, pull=[], max_entries=10)]
        )
        db = f"sqlite:///{tmp_path / 'sync.db'}"
        records = copy_records(tmp_path)
        proxy.writes.extend(["slow"] * 1000)  # every write is applied by the peer, then answered late
        first = worker(db, partners_file, records)
        try:
            deadline = time.monotonic() + DEADLINE_S
            while proxy.forwarded < 4 and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.02)
            alive = first.poll() is None
        finally:
            out = kill(first)  # the 4th write reached the peer; its answer had not come back
        assert alive and proxy.forwarded >= 4, out
        engine = open_store(db)
        counts = outbox.counts(engine)
        assert counts["in-flight"] >= 1 and counts["pending"] > 0, counts  # killed with a batch in flight
        proxy.writes.clear()
        second = worker(db, partners_file, records)
        try:
            out, _ = second.communicate(timeout=DEADLINE_S)
        finally:
            kill(second)
        assert second.returncode == 0, out
        counts = outbox.counts(engine)
        assert counts["in-flight"] == counts["pending"] == counts["failed"] == counts["dead"] == 0, counts
        # The restart enqueued the killed item's client again (it was in flight): harmless, it found it all sent.
        assert {i.client_id for i in outbox.items(engine, state="sent")} == {c.client_id for c in charts}

    held = history(fresh_sekmet)
    (partner,) = load_partners(partners_file, {})
    expected, notices = allowed(charts, partner, datetime.now(UTC))
    assert expected <= set(held) and len(held) == len(expected) + notices  # nothing lost
    assert set(held.values()) == {1}  # nothing sent twice
