"""Text FHIR cannot carry (control characters, U+FFFE, U+FFFF, lone surrogates) is refused at input, naming the
field, instead of passing validation and failing later as "an adapter defect" when XML output is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from adapter.records import Diagnosis
from adapter.records.loader import load_paths, parse_json
from tests.conftest import FIXTURES, bh_adapter

DIRECTORY = FIXTURES / "clinic" / "directory.json"
REFUSED = [0x00, 0x07, 0x0B, 0x0C, 0x1B, 0x1F, 0xFFFE, 0xFFFF]


def _client(family: str = "Nguyen", system: str = "https://riverbend.example.org/fhir/sid/mrn") -> dict[str, Any]:
    return {
        "kind": "client",
        "id": "cl-x",
        "program": "prog-omh",
        "identifiers": [{"system": system, "value": "RB-T1", "type": "MR"}],
        "names": [{"family": family, "given": ["Zoë"]}],
        "birth_date": "1990-01-01",
        "gender": "female",
    }


def _note(text: str) -> dict[str, Any]:
    return {
        "kind": "progress_note",
        "id": "note-1",
        "client": "cl-x",
        "program": "prog-omh",
        "note_kind": "progress-note",
        "author": "pr-castillo",
        "written_at": "2026-01-05T10:00:00-05:00",
        "text": text,
    }


def _problems(*records: dict[str, Any]) -> list[str]:
    result = parse_json(orjson.dumps({"records": list(records)}), source="f.json")
    return [p.line() for p in result.problems]


def _message(code_point: int) -> str:
    return f"character U+{code_point:04X} is not allowed"


@pytest.mark.parametrize("code_point", REFUSED, ids=[f"U+{c:04X}" for c in REFUSED])
def test_json_text_with_a_character_fhir_cannot_carry_is_refused_naming_the_field(code_point: int) -> None:
    bad = chr(code_point)
    assert _problems(_client(family=f"Ngu{bad}yen"))[0] == (
        f"f.json: record cl-x: field names.0.family: {_message(code_point)}: text may hold tab, line feed and "
        "carriage return, but no other control character, U+FFFE or U+FFFF"
    )
    assert _problems(_note(f"Seen{bad} today."))[0].startswith(
        f"f.json: record note-1: field text: {_message(code_point)}"
    )
    # In a uri, U+000B and U+000C are whitespace, which the uri pattern already refuses: the field is what matters.
    assert _problems(_client(system=f"urn:x{bad}y"))[0].startswith("f.json: record cl-x: field identifiers.0.system: ")


def test_tab_line_breaks_and_other_unicode_are_kept() -> None:
    text = "Line one\r\nline two\tindented; NEL \x85, DEL \x7f, emoji 👩‍⚕️, U+FFFD \ufffd."
    result = parse_json(orjson.dumps({"records": [_client(family="Nguyễn"), _note(text)]}), source="f.json")
    assert result.problems == []
    assert [getattr(r.record, "text", None) for r in result.records] == [None, text]


def test_records_built_in_python_are_held_to_the_same_rule() -> None:
    fields = {
        "id": "dx-1",
        "client": "cl-x",
        "program": "prog-omh",
        "code": "F33.1",
        "recorded_at": "2026-01-01T10:00:00-05:00",
    }
    with pytest.raises(ValidationError, match="character U\\+0007 is not allowed") as caught:
        Diagnosis.model_validate({**fields, "dsm5_text": "Major\x07 depressive disorder"})
    assert caught.value.errors()[0]["loc"] == ("dsm5_text",)
    with pytest.raises(ValidationError) as caught:  # pydantic itself refuses a lone surrogate in a str
        Diagnosis.model_validate({**fields, "dsm5_text": "Major \ud800 depressive disorder"})
    assert caught.value.errors()[0]["loc"] == ("dsm5_text",)


def test_xml_cannot_carry_them_at_all_and_is_refused_with_its_line(tmp_path: Path) -> None:
    """XML 1.0 has no way to write these characters, not even as character references: the file is refused."""
    (tmp_path / "c.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<records xmlns="urn:bh-fhir-adapter:records:1">\n'
        "<client><id>cl-x</id><program>prog-omh</program>\n"
        "<identifiers><system>https://riverbend.example.org/fhir/sid/mrn</system><value>RB-T1</value>"
        "<type>MR</type></identifiers>\n<names><family>Ngu&#7;yen</family></names>\n"
        "<birth_date>1990-01-01</birth_date><gender>female</gender></client>\n</records>\n",
        encoding="utf-8",
    )
    result = load_paths([tmp_path / "c.xml"])
    assert result.records == []
    assert [p.line().split(": malformed XML")[0] for p in result.problems] == [f"{tmp_path / 'c.xml'}: line 5"]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "directory.json").write_bytes(DIRECTORY.read_bytes())
    good = {**_client(), "id": "cl-good"}
    (folder / "clients.json").write_bytes(orjson.dumps([good, _client(family="Ngu\u0007yen")]))
    return folder


def test_bh_adapter_validate_reports_the_field_and_exits_3(export: Path) -> None:
    result = bh_adapter("validate", export)
    assert result.returncode == 3
    assert f"clients.json: record cl-x: field names.0.family: {_message(7)}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Nguyen" not in result.stderr and "Ngu" not in result.stderr  # never the text itself


def test_bh_adapter_map_to_xml_is_an_input_problem_not_an_adapter_defect(export: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = bh_adapter("map", export, "--format", "xml", "--out", out)
    assert result.returncode == 3, result.stderr  # 4 would be "the adapter produced invalid FHIR"
    assert "defect" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cl-good.xml"]
