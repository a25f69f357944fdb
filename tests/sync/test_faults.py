"""Faults between the adapter and a real peer (loopback proxy): everything arrives, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from adapter.pipeline import MappedChart
from adapter.sync import outbox
from adapter.sync.partners import load_partners
from adapter.sync.store import open_store
from tests.servers.peers import Peer
from tests.sync.faultproxy import FaultProxy
from tests.sync.peerutil import PCP_NPI, allowed, copy_records, history, partner_entry, sync, write_partners

FAST_RETRY = {"attempts": 3, "initial_wait_s": 0, "max_wait_s": 2, "jitter_s": 0, "item_attempts": 20}


def proxied(peer: Peer) -> FaultProxy:
    root = urlsplit(peer.root_url)
    return FaultProxy(root.hostname or "127.0.0.1", root.port or 80)


def test_faults_are_survived_and_nothing_is_duplicated(
    fresh_sekmet: Peer, tmp_path: Path, charts: list[MappedChart]
) -> None:
    with proxied(fresh_sekmet) as proxy:
        base = proxy.url(urlsplit(fresh_sekmet.base_url).path)
        partners_file = write_partners(
            tmp_path / "partners.yaml",
            [
                partner_entry(
                    "pcp",
                    "primary-care",
                    PCP_NPI,
                    base,
                    pull=[],
                    max_entries=25,
                    timeouts={"read_s": 1.0, "connect_s": 1.0},
                    retry=FAST_RETRY,
                )
            ],
        )
        db = f"sqlite:///{tmp_path / 'sync.db'}"
        records = copy_records(tmp_path)

        proxy.down()  # connection refused: nothing can even read the CapabilityStatement
        refused = sync(db, partners_file, records)
        (result,) = refused.partners
        assert result.error and "ConnectError" in result.error
        proxy.up()

        # Each fault hits a write; retries and re-reads go through the proxy too (and pass).
        proxy.writes.extend(["500", "429", "timeout", "reset", "drop", "pass", "500", "reset", "timeout"])
        runs = 0
        engine = open_store(db)
        while runs < 10:
            runs += 1
            sync(db, partners_file, records, retrying=None)  # the real policy: backoff, Retry-After
            counts = outbox.counts(engine)
            if counts["pending"] == counts["failed"] == counts["in-flight"] == 0:
                break
        assert counts["dead"] == 0 and counts["sent"] > 0, counts
        assert not proxy.writes  # every fault was used
        faults = [f for _, _, f in proxy.seen if f != "pass"]
        assert {"500", "429", "timeout", "reset", "drop"} <= set(faults)

    held = history(fresh_sekmet)
    (partner,) = load_partners(partners_file, {})
    expected, notices = allowed(charts, partner, datetime.now(UTC))
    assert len(held) == len(expected) + notices  # every allowed resource arrived
    assert expected <= set(held)
    assert set(held.values()) == {1}  # and exactly once: no resource has a second version
