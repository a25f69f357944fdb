"""A sync worker in its own process, for the SIGKILL and PostgreSQL tests.

    python -m tests.sync.worker_proc DB_URL PARTNERS_FILE RECORDS [--drain-only]

Prints one line `done sent=N` at the end; exit code as `bh-adapter sync` would pick.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from adapter.settings import Settings
from adapter.sync.commands import SyncOptions, run_sync


def main(argv: list[str]) -> int:
    started = time.time()
    db_url, partners_file, records = argv[:3]
    options = SyncOptions(Path(partners_file), [Path(records)], pull=False, enqueue="--drain-only" not in argv)
    result = run_sync(Settings(database_url=db_url), options, {})
    sent = sum(p.push.sent for p in result.partners if p.push)
    items = sum(p.push.items for p in result.partners if p.push)
    sys.stdout.write(f"done items={items} started={started:.2f} ended={time.time():.2f} sent={sent}\n")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
