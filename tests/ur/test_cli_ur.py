"""`bh-adapter ur`: writes the package, prints the report, audits; bad input is one line and a stable exit code."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from adapter import fhir
from adapter.errors import UsageError
from adapter.fhirxml.reader import from_xml
from adapter.schema import validator
from adapter.ur import NothingReleasableError
from tests.conftest import FIXTURES, ROOT, bh_adapter

PARTNERS = ROOT / "tests" / "ur" / "partners-insurer.yaml"
REQUEST = ("--service", "90837", "--level-of-care", "mh-outpatient", "--start", "2026-11-02", "--end", "2026-12-31")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"BH_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}", "BH_OUTPUT_DIR": str(tmp_path)}
    records = ("--records", FIXTURES / "clinic", "--partners", PARTNERS, "--at", "2026-10-30T10:00:00-04:00")
    return bh_adapter("ur", *args, *records, env=env)


def test_ur_writes_the_package_reports_and_audits(tmp_path: Path) -> None:
    result = run(tmp_path, "cl-08", "--payer", "granite-mutual", *REQUEST)
    assert result.returncode == 0, result.stderr
    bundle = fhir.loads((tmp_path / "cl-08-ur-granite-mutual.json").read_bytes())
    validator.validate(bundle)
    assert bundle["entry"][0]["resource"]["use"] == "preauthorization"
    assert "Left out as not minimum necessary" in result.stdout and "MN-NOTES" in result.stdout
    with sqlite3.connect(tmp_path / "audit.db") as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table'")]
        assert any(db.execute(f"select count(*) from {t}").fetchone()[0] for t in tables)  # noqa: S608


def test_ur_writes_xml(tmp_path: Path) -> None:
    out = tmp_path / "package.xml"
    result = run(tmp_path, "cl-08", "--payer", "granite-mutual", *REQUEST, "--format", "xml", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert from_xml(out.read_bytes())["entry"][0]["resource"]["resourceType"] == "Claim"


def test_unknown_client_or_payer_is_one_line_and_a_usage_exit_code(tmp_path: Path) -> None:
    for args in (("cl-99", "--payer", "granite-mutual"), ("cl-08", "--payer", "nobody")):
        result = run(tmp_path, *args, *REQUEST)
        assert result.returncode == UsageError.exit_code
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_bad_level_of_care_is_a_usage_error(tmp_path: Path) -> None:
    bad = ("--service", "90837", "--level-of-care", "spa-day", "--start", "2026-11-02", "--end", "2026-12-31")
    result = run(tmp_path, "cl-08", "--payer", "granite-mutual", *bad)
    assert result.returncode == UsageError.exit_code
    assert "unknown level of care" in result.stderr


def test_a_package_the_consent_rules_withhold_exits_with_its_own_code(tmp_path: Path) -> None:
    result = run(tmp_path, "cl-02", "--payer", "granite-mutual", *REQUEST)
    assert result.returncode == NothingReleasableError.exit_code
    assert not list(tmp_path.glob("cl-02-ur-*"))
