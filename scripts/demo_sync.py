"""The README's main job: map the shipped fixtures, then sync every client to the two local partners.

    .venv/bin/python scripts/demo_sync.py [--out DIR]

Starts the Medplum peer (psychiatry partner) and the sekmet peer (primary-care partner) from tests/servers/, or
uses running ones (BH_MEDPLUM_URL / BH_SEKMET_URL, or the ports partners/local-peers.yaml defaults to), runs
`bh-adapter sync --once` against partners/local-peers.yaml with a fresh SQLite store under out/demo/, prints what
each partner was sent and what was withheld and why, and stops the peers it started. Exit code: the sync's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.peers import SPECS, PeerStartError, start_peer  # noqa: E402

# The ports partners/local-peers.yaml falls back to when BH_MEDPLUM_URL / BH_SEKMET_URL are unset.
DEFAULT_URLS = {"medplum": "http://127.0.0.1:8103/fhir/R4", "sekmet": "http://127.0.0.1:8091/fhir"}
PARTNER_OF = {"medplum": "northfield-psychiatry", "sekmet": "maple-street-primary-care"}


def running(url: str) -> bool:
    try:
        return httpx.get(f"{url}/metadata", timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def peer_urls(stack: ExitStack) -> dict[str, str]:
    """The FHIR base of each peer: named in the environment, already listening on the default port, or started
    here (and stopped when `stack` closes)."""
    urls = {}
    for name, spec in SPECS.items():
        given = os.environ.get(spec.url_env)
        if given or running(DEFAULT_URLS[name]):
            urls[name] = (given or DEFAULT_URLS[name]).rstrip("/")
            say(f"{name}: using the peer at {urls[name]}")
            continue
        say(f"{name}: starting the test peer (tests/servers/{name}) ...")
        peer = start_peer(name, attach=False)
        stack.callback(peer.stop)  # type: ignore[union-attr]
        urls[name] = peer.peer.base_url  # type: ignore[union-attr]
        say(f"{name}: ready at {urls[name]}")
    return urls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="where the Bundles and the demo store go")
    out = parser.parse_args().out.resolve()
    adapter = str(Path(sys.executable).parent / "bh-adapter")
    demo_dir = out / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)

    say(f"== 1. map: fixtures/clinic -> {out} (one FHIR R4 Bundle per client)")
    mapped = subprocess.run([adapter, "map", "fixtures/clinic", "--out", str(out)], cwd=ROOT, check=False)  # noqa: S603
    if mapped.returncode != 0:
        return mapped.returncode

    with ExitStack() as stack:
        say("== 2. partners: the local FHIR peers")
        try:
            urls = peer_urls(stack)
        except PeerStartError as exc:
            say(f"error: {str(exc).splitlines()[0]} (install them with: bash tests/servers/install.sh medplum sekmet)")
            return 1
        env = {
            **os.environ,
            "BH_MEDPLUM_URL": urls["medplum"],
            "BH_SEKMET_URL": urls["sekmet"],
            # A fresh store: the outbox, the delivery ledger and the audit trail of this demo only.
            "BH_DATABASE_URL": f"sqlite:///{demo_dir / 'adapter.db'}",
        }
        say(
            "== 3. sync: every fixture client to "
            + " and ".join(f"{PARTNER_OF[n]} ({n})" for n in SPECS)
            + ", through the consent release point"
        )
        synced = subprocess.run(  # noqa: S603
            [adapter, "sync", "--once", "--partners", "partners/local-peers.yaml"], cwd=ROOT, env=env, check=False
        )
        say(f"audit trail and outbox: {demo_dir / 'adapter.db'} (bh-adapter outbox list, with BH_DATABASE_URL set)")
        return synced.returncode


if __name__ == "__main__":
    sys.exit(main())
