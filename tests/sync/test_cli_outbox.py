"""`bh-adapter outbox list` from the command line: an empty outbox, and a state that does not exist."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import bh_adapter


def _database(tmp_path: Path) -> dict[str, str]:
    return {"BH_DATABASE_URL": f"sqlite:///{tmp_path / 'sync.db'}"}


def test_an_empty_outbox_lists_nothing(tmp_path: Path) -> None:
    result = bh_adapter("outbox", "list", env=_database(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 item(s)"


def test_an_unknown_state_is_a_usage_error_not_an_empty_list(tmp_path: Path) -> None:
    result = bh_adapter("outbox", "list", "--state", "bogus", env=_database(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --state must be one of pending, in-flight, sent, failed, dead"
