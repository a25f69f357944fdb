"""Input that FHIR cannot carry is refused at validation, with a located problem, so `validate` and `map` agree:
instant offsets beyond +-14:00, positiveInts beyond 32 bits, empty addresses, records dated before the client's
birth, wrapper objects with other keys, and JSON values the loader cannot hand on (with the real reason)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapter.records import MedicationOrder
from adapter.records.chart import assemble
from adapter.records.loader import LoadResult, parse_json, parse_xml
from adapter.records.xml_input import NAMESPACE
from tests.conftest import FIXTURES, bh_adapter

DIRECTORY = FIXTURES / "invalid" / "directory.json"  # org-1, prog-1, pr-1, client c-1 (born 1989-07-14), dx-1


def note(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "progress_note",
        "id": "note-1",
        "client": "c-1",
        "program": "prog-1",
        "note_kind": "progress-note",
        "author": "pr-1",
        "written_at": "2024-03-04T17:00:00-06:00",
        "text": "Intake completed.",
    }
    return record | changes


def order(**dosage: Any) -> dict[str, Any]:
    return {
        "kind": "medication_order",
        "id": "mo-1",
        "client": "c-1",
        "program": "prog-1",
        "drug": {"rxnorm": "312941", "text": "sertraline"},
        "prescriber": "pr-1",
        "authored_at": "2024-03-04T16:55:00-06:00",
        "status": "active",
        "dosage": {"text": "50 mg twice daily", "dose_value": 50, "dose_unit": "mg"} | dosage,
    }


def plan(*, count: int, signed_at: str = "2024-03-04T17:00:00-06:00") -> dict[str, Any]:
    return {
        "kind": "treatment_plan",
        "id": "tp-1",
        "client": "c-1",
        "program": "prog-1",
        "status": "active",
        "period": {"start": "2024-03-04"},
        "created_at": "2024-03-04T17:00:00-06:00",
        "author": "pr-1",
        "problems": ["dx-1"],
        "interventions": [{"id": "iv-1", "modality": "cbt", "frequency": {"count": count, "unit": "wk"}}],
        "signatures": [{"role": "author", "signer": "pr-1", "signed_at": signed_at}],
    }


def client(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "client",
        "id": "c-2",
        "program": "prog-1",
        "identifiers": [{"system": "https://lakeside.example.org/mrn", "value": "MRN-0002", "type": "MR"}],
        "names": [{"family": "Okafor", "given": ["Ben"]}],
        "birth_date": "1991-02-03",
        "gender": "male",
    }
    return record | changes


def load(data: bytes | Any) -> LoadResult:
    return parse_json(data if isinstance(data, bytes) else json.dumps(data).encode(), source="in.json")


def lines(result: LoadResult) -> list[str]:
    return [p.line() for p in result.problems]


def clinic_lines(*records: dict[str, Any]) -> list[str]:
    """Problems of the directory plus `records`, through the loader and chart assembly."""
    loaded = parse_json(DIRECTORY.read_bytes(), source="directory.json")
    loaded.extend(load(list(records)))
    return lines(loaded) + [p.line() for p in assemble(loaded.records).problems]


def xml(body: str) -> bytes:
    return f'<records xmlns="{NAMESPACE}">{body}</records>'.encode()


# ---- instants: offsets from -14:00 to +14:00 -------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+15:00", "-14:30", "+14:01", "-23:59"])
def test_an_offset_beyond_14_hours_is_a_located_problem(offset: str) -> None:
    assert lines(load(note(written_at=f"2024-03-04T17:00:00{offset}"))) == [
        "in.json: record note-1: field written_at: the timezone offset must be Z or between -14:00 and +14:00 "
        "(FHIR instant)"
    ]


@pytest.mark.parametrize("offset", ["+14:00", "-14:00", "Z", "+05:45"])
def test_offsets_fhir_allows_are_accepted(offset: str) -> None:
    assert lines(load(note(written_at=f"2024-03-04T17:00:00{offset}"))) == []


def test_a_visit_period_offset_is_checked_too() -> None:
    visit = {
        "kind": "visit",
        "id": "v-1",
        "client": "c-1",
        "program": "prog-1",
        "type": "intake",
        "period": {"start": "2024-03-04T17:00:00-06:00", "end": "2024-03-04T18:00:00+15:00"},
    }
    assert [p.field for p in load(visit).problems] == ["period.end"]


def test_an_offset_beyond_14_hours_in_xml_is_refused() -> None:
    body = (
        "<progress_note><id>note-1</id><client>c-1</client><program>prog-1</program>"
        "<note_kind>progress-note</note_kind><author>pr-1</author>"
        "<written_at>2024-03-04T17:00:00+15:00</written_at><text>Intake.</text></progress_note>"
    )
    result = parse_xml(xml(body), source="in.xml")
    assert result.records == []
    assert len(result.problems) == 1
    assert "'written_at'" in result.problems[0].message


# ---- positiveInt: at most 2147483647 ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [2_147_483_648, 1_099_511_627_776, 10**23])
def test_a_dosage_frequency_beyond_32_bits_is_a_located_problem(value: int) -> None:
    assert lines(load(order(frequency=value))) == [
        "in.json: record mo-1: field dosage.frequency: Input should be less than or equal to 2147483647"
    ]


def test_a_plan_frequency_count_beyond_32_bits_is_a_located_problem() -> None:
    assert lines(load(plan(count=2_147_483_648))) == [
        "in.json: record tp-1: field interventions.0.frequency.count: Input should be less than or equal to 2147483647"
    ]


def test_the_largest_fhir_integer_is_accepted() -> None:
    assert lines(load(order(frequency=2_147_483_647))) == []
    assert lines(load(plan(count=2_147_483_647))) == []


def test_a_frequency_beyond_32_bits_in_xml_is_refused() -> None:
    body = (
        "<medication_order><id>mo-1</id><client>c-1</client><program>prog-1</program>"
        "<drug><rxnorm>312941</rxnorm><text>sertraline</text></drug><prescriber>pr-1</prescriber>"
        "<authored_at>2024-03-04T16:55:00-06:00</authored_at><status>active</status>"
        "<dosage><text>x</text><frequency>2147483648</frequency></dosage></medication_order>"
    )
    result = parse_xml(xml(body), source="in.xml")
    assert result.records == []
    assert len(result.problems) == 1
    assert "frequency" in result.problems[0].message and "2147483647" in result.problems[0].message


# ---- Address: ele-1 --------------------------------------------------------------------------------------


def test_an_empty_address_is_a_located_problem() -> None:
    assert lines(load(client(address=[{"city": "Springfield"}, {}]))) == [
        "in.json: record c-2: field address.1: an address needs a line, city, state, postal_code or country"
    ]
    assert lines(load(client(address=[{"use": "home"}]))) != []


def test_an_empty_address_in_xml_is_a_located_problem() -> None:
    body = (
        "<client><id>c-2</id><program>prog-1</program>"
        "<identifiers><system>https://lakeside.example.org/mrn</system><value>MRN-0002</value><type>MR</type>"
        "</identifiers><names><family>Okafor</family></names><birth_date>1991-02-03</birth_date>"
        "<gender>male</gender><address/></client>"
    )
    result = parse_xml(xml(body), source="in.xml")
    assert result.records == []
    assert [p.line() for p in result.problems] == [
        "in.xml: record c-2: field address.0: an address needs a line, city, state, postal_code or country"
    ]


# ---- the client's birth date -----------------------------------------------------------------------------


def test_a_note_written_before_the_client_was_born_is_a_located_problem() -> None:
    # c-1 is born 1989-07-14
    assert clinic_lines(note(written_at="1989-07-13T23:59:59Z")) == [
        "in.json: record note-1: field written_at: dated before the client's birth date"
    ]


def test_a_client_born_in_the_future_of_its_records() -> None:
    born_2090 = client(id="c-9", birth_date="2090-01-01")
    assert clinic_lines(born_2090, note(client="c-9")) == [
        "in.json: record note-1: field written_at: dated before the client's birth date"
    ]


def test_a_diagnosis_onset_before_birth_takes_its_dependents_with_it() -> None:
    diagnosis = {
        "kind": "diagnosis",
        "id": "dx-2",
        "client": "c-1",
        "program": "prog-1",
        "code": "F41.1",
        "onset": "1980-05-01",
        "recorded_at": "2024-03-04T16:10:00-06:00",
    }
    dependent = plan(count=1) | {"problems": ["dx-2"]}
    assert clinic_lines(diagnosis, dependent) == [
        "in.json: record dx-2: field onset: dated before the client's birth date",
        "in.json: record tp-1: field problems[0]: unknown or rejected diagnosis 'dx-2'",
    ]


def test_a_nested_date_before_birth_names_its_path() -> None:
    assert clinic_lines(plan(count=1, signed_at="1970-01-01T00:00:00Z")) == [
        "in.json: record tp-1: field signatures[0].signed_at: dated before the client's birth date"
    ]


def test_records_on_the_birth_date_are_accepted() -> None:
    assert clinic_lines(note(written_at="1989-07-14T00:00:00-06:00")) == []


# ---- the wrapper object ----------------------------------------------------------------------------------


def test_a_wrapper_with_another_key_is_a_problem_not_dropped_records() -> None:
    result = load({"records": [note()], "more": [note(id="note-2")]})
    assert result.records == []
    assert lines(result) == [
        "in.json: field more: unknown field 'more': a wrapper object holds only \"records\" (a list of records)"
    ]


def test_a_wrapper_whose_records_are_no_list_is_a_problem() -> None:
    assert lines(load({"records": 5})) == ['in.json: field records: "records" must be a list']


# ---- values the loader cannot hand on: the real reason ---------------------------------------------------


def test_an_integer_beyond_64_bits_in_a_text_field_is_a_type_problem() -> None:
    assert lines(load(b'{"kind": "progress_note", "id": "note-1", "client": "c-1", "program": "prog-1", '
                      b'"note_kind": "progress-note", "author": "pr-1", '
                      b'"written_at": "2024-03-04T17:00:00Z", "text": 18446744073709551616}')) == [
        "in.json: record note-1: field text: Input should be a valid string"
    ]  # fmt: skip


def test_nesting_too_deep_says_so() -> None:
    deep = b"[" * 300 + b"]" * 300
    data = b'{"kind": "progress_note", "id": "note-1", "extra": ' + deep + b"}"
    assert lines(load(data)) == [
        "in.json: record note-1: objects and lists are nested too deeply (a record is a few levels deep)"
    ]


def test_a_lone_surrogate_still_says_so() -> None:
    data = orjson.dumps(note(text="x")).replace(b'"text":"x"', b'"text":"\\ud800"')
    assert lines(load(data)) == [
        "in.json: record note-1: a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not "
        "a character"
    ]


def test_a_long_whole_decimal_is_kept_as_written() -> None:
    data = orjson.dumps(order(frequency=2)).replace(b'"dose_value":50', b'"dose_value":1000000000000000000000000000000')
    result = load(data)
    assert lines(result) == []
    (loaded,) = result.records
    assert isinstance(loaded.record, MedicationOrder) and loaded.record.dosage is not None
    assert str(loaded.record.dosage.dose_value) == "1000000000000000000000000000000"


# ---- validate and map agree ------------------------------------------------------------------------------


def test_map_rejects_the_record_instead_of_dropping_the_client(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps([note(written_at="2024-03-04T17:00:00+15:00"), order(frequency=2**40)]))
    out = tmp_path / "out"
    mapped = bh_adapter("map", DIRECTORY, bad, "--out", out)
    assert mapped.returncode == 3, mapped.stderr  # records rejected (3), not an adapter defect (4)
    assert "record note-1: field written_at" in mapped.stderr
    assert "record mo-1: field dosage.frequency" in mapped.stderr
    assert list(out.glob("*.json")), "the client's good records are still written"
    assert bh_adapter("validate", DIRECTORY, bad).returncode == 3
