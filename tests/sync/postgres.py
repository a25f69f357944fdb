"""A throwaway PostgreSQL cluster from Debian's binaries, for the multi-worker outbox test.

Needs the `postgresql` package (``apt-get install -y postgresql``: /usr/lib/postgresql/<major>/bin). As root,
the cluster runs as the `postgres` user (initdb refuses root). It listens on 127.0.0.1 only, on a free port,
with fsync off (a test cluster), and is stopped (immediate mode) and deleted at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.peers import free_port

START_TIMEOUT_S = 60


class PostgresUnavailableError(RuntimeError):
    pass


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailableError("PostgreSQL is not installed (apt-get install -y postgresql)")
    return Path(found[-1]).parent


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailableError("running as root without runuser: cannot start PostgreSQL as `postgres`")
    return [runuser, "-u", "postgres", "--", *command]


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster; yields its SQLAlchemy URL (database `postgres`, user `postgres`, trust auth)."""
    binaries = bindir()
    root = Path(tempfile.mkdtemp(prefix="bh-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "postgres.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    ctl = str(binaries / "pg_ctl")
    try:
        subprocess.run(
            _as_owner(
                [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        subprocess.run(
            _as_owner([ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", str(START_TIMEOUT_S), "start"]),
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S + 10,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise PostgresUnavailableError(f"PostgreSQL did not start: {exc.stderr!r}\n{tail}") from exc
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_owner([ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)
