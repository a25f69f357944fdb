"""`bh-adapter disclose` as a user runs it: a real process, a real SQLite audit store, the written Bundle."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from adapter import fhir
from adapter.schema import validator
from tests.conftest import FIXTURES, bh_adapter


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"BH_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}", "BH_OUTPUT_DIR": str(tmp_path)}
    return bh_adapter("disclose", *args, "--records", FIXTURES / "clinic", env=env)


def test_disclose_writes_the_bundle_reports_and_audits(tmp_path: Path) -> None:
    out = tmp_path / "cl-16.json"
    result = run(
        tmp_path,
        "cl-16",
        "--to",
        "org-northfield-psych",
        "--purpose",
        "TREAT",
        "--at",
        "2026-10-26T10:00:00-04:00",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "Withheld" in result.stdout and "PT2-DEFAULT-DENY" in result.stdout
    assert "HIPAA-TPO" in result.stdout
    bundle = fhir.loads(out.read_bytes())
    validator.validate(bundle)
    with sqlite3.connect(tmp_path / "audit.db") as db:
        (count,) = db.execute("select count(*) from audit_event").fetchone()
    assert count > 0


def test_disclose_emergency(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "cl-02",
        "--to",
        "org-cvrh",
        "--purpose",
        "ETREAT",
        "--at",
        "2026-01-10T10:00:00-05:00",
        "--emergency",
        "unresponsive, suspected opioid overdose",
        "--medical-personnel",
    )
    assert result.returncode == 0, result.stderr
    assert "PT2-EMERGENCY" in result.stdout and "emergency: unresponsive" in result.stdout
    assert (tmp_path / "cl-02-disclosure.json").exists()


def test_disclose_usage_errors(tmp_path: Path) -> None:
    unknown = run(tmp_path, "cl-99", "--to", "org-cvrh", "--purpose", "TREAT", "--at", "2026-01-10T10:00:00-05:00")
    assert unknown.returncode == 2 and "no client" in unknown.stderr
    naive = run(tmp_path, "cl-02", "--to", "org-cvrh", "--purpose", "TREAT", "--at", "2026-01-10T10:00:00")
    assert naive.returncode == 2 and "timezone" in naive.stderr
    purpose = run(tmp_path, "cl-02", "--to", "org-cvrh", "--purpose", "NOPE", "--at", "2026-01-10T10:00:00-05:00")
    assert purpose.returncode == 2 and "unknown purpose" in purpose.stderr
    org = run(tmp_path, "cl-02", "--to", "org-nowhere", "--purpose", "TREAT")
    assert org.returncode == 2 and "no organization" in org.stderr
