"""`bh-adapter` as a user runs it: real processes, real files, exit codes and messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from adapter import fhir
from adapter.fhirxml.reader import from_xml
from adapter.schema import validator
from tests.conftest import FIXTURES, ROOT, bh_adapter

CLINIC = FIXTURES / "clinic"
INVALID = FIXTURES / "invalid"


@pytest.fixture(scope="module")
def json_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("json")
    result = bh_adapter("map", CLINIC, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "16 client(s) mapped" in result.stdout
    assert result.stderr == ""
    return out


def test_map_writes_one_valid_bundle_per_client(json_out: Path) -> None:
    files = sorted(json_out.glob("*.json"))
    assert len(files) == 16
    for file in files:
        bundle = fhir.loads(file.read_bytes())
        assert bundle["type"] == "collection"
        validator.validate(bundle)
        fhir.reference_validate(bundle)


def test_map_is_deterministic_across_processes(json_out: Path, tmp_path: Path) -> None:
    result = bh_adapter("map", CLINIC, "--out", tmp_path)
    assert result.returncode == 0
    for file in json_out.glob("*.json"):
        assert (tmp_path / file.name).read_bytes() == file.read_bytes()


def test_map_xml_round_trips_to_the_json_bundles(json_out: Path, tmp_path: Path) -> None:
    result = bh_adapter("map", CLINIC, "--format", "xml", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    xml_files = sorted(tmp_path.glob("*.xml"))
    assert len(xml_files) == 16
    for file in xml_files:
        assert from_xml(file.read_bytes()) == fhir.loads((json_out / f"{file.stem}.json").read_bytes())


def test_map_ndjson_writes_one_file_per_type_without_duplicates(json_out: Path, tmp_path: Path) -> None:
    result = bh_adapter("map", CLINIC, "--format", "ndjson", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    expected: dict[str, set[str]] = {}
    for file in json_out.glob("*.json"):
        for entry in orjson.loads(file.read_bytes())["entry"]:
            expected.setdefault(entry["resource"]["resourceType"], set()).add(entry["resource"]["id"])
    assert {p.stem for p in tmp_path.glob("*.ndjson")} == set(expected)
    for resource_type, ids in expected.items():
        lines = (tmp_path / f"{resource_type}.ndjson").read_bytes().splitlines()
        seen = [orjson.loads(line)["id"] for line in lines]
        assert sorted(seen) == sorted(ids)  # every resource once
    assert not list(tmp_path.glob(".*part"))


def test_bad_input_gets_one_clear_line_per_record_and_a_nonzero_exit(tmp_path: Path) -> None:
    result = bh_adapter("map", INVALID, "--out", tmp_path)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    bad_files = [p for p in INVALID.iterdir() if p.suffix in (".json", ".xml") and p.name != "directory.json"]
    assert len(lines) == len(bad_files)
    for file in bad_files:
        assert (
            sum(
                line.startswith(f"error: {INVALID.relative_to(ROOT) / file.name}:")
                or line.startswith(f"error: {file}:")
                for line in lines
            )
            == 1
        ), file.name
    # The valid records in the same run (directory.json's client) are still written.
    assert [p.name for p in tmp_path.glob("*.json")] == ["c-1.json"]
    assert f"{len(bad_files)} record(s) rejected" in result.stdout


def test_good_records_are_written_when_others_in_the_same_run_are_bad(tmp_path: Path) -> None:
    mixed = tmp_path / "in"
    mixed.mkdir()
    for name in ("directory.json", "05-phq9-missing-item.json"):
        shutil.copy(CLINIC / name, mixed / name)
    shutil.copy(INVALID / "phq9-answer-out-of-range.json", mixed / "bad.json")
    out = tmp_path / "out"
    result = bh_adapter("map", mixed, "--out", out)
    assert result.returncode == 3
    assert (out / "cl-05.json").exists()


def test_validate_checks_input_without_writing(tmp_path: Path) -> None:
    ok = bh_adapter("validate", CLINIC)
    assert ok.returncode == 0 and "0 rejected" in ok.stdout
    bad = bh_adapter("validate", INVALID / "directory.json", INVALID / "unknown-instrument.json")
    assert bad.returncode == 3
    assert "field instrument: unknown instrument" in bad.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("map", "/no/such/path"), "no such file or folder"),
        (("map", str(CLINIC), "--format", "yaml"), "yaml"),
        (("map", str(CLINIC), "--recorded-at", "2026-01-01T00:00:00"), "needs a timezone"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = bh_adapter(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_recorded_at_pins_provenance_time(tmp_path: Path) -> None:
    result = bh_adapter(
        "map",
        CLINIC / "directory.json",
        CLINIC / "13-gad7-phq2.json",
        "--out",
        tmp_path,
        "--recorded-at",
        "2026-02-01T12:00:00-05:00",
    )
    assert result.returncode == 0, result.stderr
    bundle = orjson.loads((tmp_path / "cl-13.json").read_bytes())
    provenance = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
    assert provenance[-1]["recorded"] == "2026-02-01T12:00:00-05:00"
    assert bundle["timestamp"] == "2026-02-01T12:00:00-05:00"


def test_map_skips_a_client_without_program_and_records_with_a_clear_problem(tmp_path: Path) -> None:
    """A client whose records' custodian is unknown is reported and skipped: the other clients are written."""
    source = tmp_path / "records.json"
    clients = orjson.loads((CLINIC / "03-depression-and-alcohol-use.json").read_bytes())["records"]
    lone = {k: v for k, v in clients[0].items() if k != "program"} | {"id": "cl-lone"}
    assert lone["kind"] == "client"
    source.write_bytes(orjson.dumps({"records": [*clients, lone]}))
    out = tmp_path / "out"
    result = bh_adapter("map", CLINIC / "directory.json", source, "--out", out)
    assert "Traceback" not in result.stderr and result.returncode == 3  # some records rejected
    assert "record cl-lone: field program: a client with no records needs the program" in result.stderr
    assert (out / "cl-03.json").exists() and not (out / "cl-lone.json").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BH_RECORDED_AT", "2026-01-01T00:00:00"),
        ("BH_ID_NAMESPACE", "notauuid"),
        ("BH_STRICT_VALIDATION", "maybe"),
        ("BH_FHIR_BASE", "not a url"),
        ("BH_CLINIC_TIMEZONE", "Mars/Olympus_Mons"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_2(tmp_path: Path, variable: str, value: str) -> None:
    result = bh_adapter("map", CLINIC, "--out", tmp_path, env={variable: value})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {variable}: ")
    assert not list(tmp_path.iterdir())  # nothing written
