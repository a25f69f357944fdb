"""Shared test configuration: the --update-golden option and the shipped fixtures, loaded once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"


def bh_adapter(
    *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`bh-adapter ARGS` in a process of its own, from the repository root, as a user runs it; `env` adds to (or
    replaces in) this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "adapter", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env} if env is not None else None,
        timeout=timeout,
        check=False,
    )


# Property tests explore new random examples on every local run; CI (CI=true, as .ci/run sets it) replays a
# fixed sequence, so a merge is never blocked by an example nobody has seen. A failure found locally is kept in
# .hypothesis/ and replayed until fixed.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Real FHIR servers (Medplum engine, sekmet-fhir) for the integration tests: see docs/testing.md.
pytest_plugins = ["tests.servers.fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ from the current output",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
