"""`bh-adapter tokens create|revoke|list` as a user runs them (real processes), against a temporary database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from adapter.services import Services
from adapter.settings import Settings
from tests.conftest import bh_adapter


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "BH_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "200"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return bh_adapter(*args, env=env, timeout=120)


def test_create_prints_the_secret_once_and_it_authenticates(env: dict[str, str]) -> None:
    created = run(env, "tokens", "create", "--role", "partner", "--partner", "northfield-psychiatry", "--label", "ehr")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    token_id = secret.partition(".")[0]
    services = Services.open(Settings(database_url=env["BH_DATABASE_URL"]), {})
    check = services.tokens.check(secret, services.clock())
    assert check.verdict == "ok" and check.token is not None
    assert (check.token.role, check.token.partner_id, check.token.purposes) == (
        "partner",
        "northfield-psychiatry",
        ("TREAT",),
    )
    listed = run(env, "tokens", "list")
    assert listed.returncode == 0
    assert token_id in listed.stdout and "active" in listed.stdout
    assert secret.partition(".")[2] not in listed.stdout


def test_revoke_then_list_shows_it_revoked(env: dict[str, str]) -> None:
    created = run(env, "tokens", "create", "--role", "clinic-admin")
    token_id = created.stdout.strip().splitlines()[-1].partition(".")[0]
    revoked = run(env, "tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in run(env, "tokens", "list").stdout


def test_bad_requests_are_one_line_errors_with_usage_exit_codes(env: dict[str, str]) -> None:
    for args, message in [
        (("tokens", "create", "--role", "root"), "unknown role"),
        (("tokens", "create", "--role", "partner", "--partner", "nobody"), "no partner"),
        (("tokens", "create", "--role", "partner", "--partner", "northfield-psychiatry", "--purpose", "X"), "purpose"),
        (("tokens", "create", "--role", "ingest", "--partner", "northfield-psychiatry"), "only partner tokens"),
        (("tokens", "create", "--role", "ingest", "--expires", "2026-12-31T00:00:00"), "timezone"),
    ]:
        result = run(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    unknown = run(env, "tokens", "revoke", "bh-000000000000")
    assert unknown.returncode == 2 and "no token" in unknown.stderr
