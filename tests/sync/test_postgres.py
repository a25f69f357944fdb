"""Two workers drain one PostgreSQL outbox at once: every item is taken by one of them, delivered once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, text

from adapter.pipeline import MappedChart
from adapter.sync import outbox
from adapter.sync.partners import load_partners
from adapter.sync.store import open_store
from tests.conftest import ROOT
from tests.servers.peers import Peer
from tests.sync.faultproxy import FaultProxy
from tests.sync.peerutil import PCP_NPI, allowed, copy_records, history, partner_entry, write_partners

pytestmark = pytest.mark.integration


def test_two_workers_share_one_outbox(
    fresh_sekmet: Peer, postgres_url: str, tmp_path: Path, charts: list[MappedChart]
) -> None:
    engine = open_store(postgres_url)
    try:
        _run(engine, fresh_sekmet, postgres_url, tmp_path, charts)
    finally:
        engine.dispose()  # no pooled connection left for the garbage collector


def _run(engine: Engine, fresh_sekmet: Peer, postgres_url: str, tmp_path: Path, charts: list[MappedChart]) -> None:
    with engine.begin() as conn:  # the session's cluster may hold a previous test's rows
        conn.execute(text("TRUNCATE sync_outbox, sync_deliveries, sync_cursors, sync_received"))
    root = urlsplit(fresh_sekmet.root_url)
    # Slow writes (0.15 s each) so that both workers are busy at the same time.
    with FaultProxy(root.hostname or "127.0.0.1", root.port or 80, slow_s=0.15) as proxy:
        proxy.writes.extend(["slow"] * 1000)
        base = proxy.url(urlsplit(fresh_sekmet.base_url).path)
        partners_file = write_partners(
            tmp_path / "partners.yaml", [partner_entry("pcp", "primary-care", PCP_NPI, base, pull=[], max_entries=10)]
        )
        records = copy_records(tmp_path)
        outbox.enqueue(engine, "pcp", [c.client_id for c in charts], 0)
        command = [
            sys.executable,
            "-m",
            "tests.sync.worker_proc",
            postgres_url,
            str(partners_file),
            str(records),
            "--drain-only",
        ]
        workers = [
            subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
            for _ in range(2)
        ]
        outputs = []
        try:
            for w in workers:
                out, _ = w.communicate(timeout=180)
                outputs.append(out)
        finally:
            for w in workers:
                if w.poll() is None:
                    os.killpg(w.pid, signal.SIGKILL)
                    w.communicate(timeout=30)
        assert all(w.returncode == 0 for w in workers), outputs

    items = outbox.items(engine)
    assert len(items) == len(charts) and all(i.state == "sent" for i in items)
    assert all(i.attempts == 1 for i in items)  # each item taken once
    done = [dict(kv.split("=") for kv in out.strip().splitlines()[-1].split()[1:]) for out in outputs]
    assert sum(int(d["items"]) for d in done) == len(charts)  # together they took every item, once
    assert all(int(d["items"]) > 0 for d in done), done  # and both did part of the work

    held = history(fresh_sekmet)
    (partner,) = load_partners(partners_file, {})
    expected, notices = allowed(charts, partner, datetime.now(UTC))
    assert expected <= set(held) and len(held) == len(expected) + notices
    assert set(held.values()) == {1}  # shared resources too: one worker sent each, the other found it sent
