"""A real `bh-adapter serve` process on a free loopback port, for the tests that talk HTTP to it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from tests.conftest import ROOT
from tests.servers.peers import free_port


@contextmanager
def served(
    env: Mapping[str, str], *args: str, stop_timeout_s: float = 30
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(base URL, process) of `bh-adapter serve ARGS` once it answers /health; terminated at the end."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # waiting for a real process to bind its port: polling is the only way
            alive(process)
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=stop_timeout_s)
        if process.stderr is not None:
            process.stderr.close()


def alive(process: subprocess.Popen[bytes]) -> None:
    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
