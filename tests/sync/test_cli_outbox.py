"""`bh-adapter outbox list` from the command line: an empty outbox, and a state that does not exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _outbox(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BH_DATABASE_URL": f"sqlite:///{tmp_path / 'sync.db'}"}
    return subprocess.run(
        [sys.executable, "-m", "adapter", "outbox", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
        env=env,
    )


def test_an_empty_outbox_lists_nothing(tmp_path: Path) -> None:
    result = _outbox(tmp_path, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 item(s)"


def test_an_unknown_state_is_a_usage_error_not_an_empty_list(tmp_path: Path) -> None:
    result = _outbox(tmp_path, "list", "--state", "bogus")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --state must be one of pending, in-flight, sent, failed, dead"
