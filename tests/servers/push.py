"""Send `bh-adapter map` output to a FHIR peer by hand (docs/testing.md).

    python -m tests.servers.push http://127.0.0.1:8103/fhir/R4 out/*.json

Each collection Bundle becomes transactions of PUTs (the adapter's ids are stable, so re-sending is idempotent),
at most 50 entries each: Medplum's engine rejects a transaction with more than 50 updates. A transaction or batch
Bundle is posted as it is. Exit code 1 if any was rejected; the peer's issues are printed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.fhir import loads
from tests.servers.client import PeerResponseError, errors, post_bundle, post_transaction

MAX_UPDATES_PER_TRANSACTION = 50  # @medplum/fhir-router batch.ts maxUpdates


@dataclass(frozen=True)
class Target:
    base_url: str


def push_file(target: Target, path: Path) -> list[str]:
    """Posts one file; returns one line per rejected transaction (empty when all were accepted)."""
    bundle: dict[str, Any] = loads(path.read_bytes())
    if bundle.get("resourceType") != "Bundle":
        return [f"{path}: not a Bundle"]
    failures = []
    try:
        if bundle.get("type") in ("transaction", "batch"):
            post_bundle(target, bundle)
        else:
            resources = [entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry]
            for start in range(0, len(resources), MAX_UPDATES_PER_TRANSACTION):
                post_transaction(target, resources[start : start + MAX_UPDATES_PER_TRANSACTION])
    except PeerResponseError as exc:
        issues = errors(exc.outcome or {}) or [{"diagnostics": str(exc)}]
        for issue in issues:
            text = issue.get("details", {}).get("text") or issue.get("diagnostics")
            failures.append(f"{path}: HTTP {exc.status_code}: {issue.get('expression', '')} {text}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url", help="FHIR base, e.g. http://127.0.0.1:8103/fhir/R4")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    target = Target(args.base_url.rstrip("/"))
    failures = [line for path in args.files for line in push_file(target, path)]
    for line in failures:
        sys.stderr.write(line + "\n")
    sys.stdout.write(f"{len(args.files)} file(s) sent, {len(failures)} rejection(s)\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
