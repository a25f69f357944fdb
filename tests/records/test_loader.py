"""The JSON loader: whole-list fast path, record-by-record fallback, and input it must refuse."""

from __future__ import annotations

import orjson
import pytest

from adapter.records.loader import parse_json
from tests.conftest import FIXTURES


def _clinic_items() -> list[dict[str, object]]:
    items: list[dict[str, object]] = orjson.loads((FIXTURES / "clinic" / "05-phq9-missing-item.json").read_bytes())[
        "records"
    ]
    return items


def test_a_bad_record_does_not_hide_the_good_ones() -> None:
    items = _clinic_items()
    bad = dict(items[-1], id="broken", unknown_field=1)
    result = parse_json(orjson.dumps({"records": [*items, bad]}), source="f.json")
    assert [r.record.id for r in result.records] == [i["id"] for i in items]
    assert [(p.record_id, p.field) for p in result.problems] == [("broken", "unknown_field")]


def test_fast_path_and_fallback_give_the_same_records() -> None:
    items = _clinic_items()
    fast = parse_json(orjson.dumps({"records": items}), source="f.json")
    slow = parse_json(orjson.dumps({"records": [*items, {"kind": "client"}]}), source="f.json")
    assert [r.record for r in fast.records] == [r.record for r in slow.records]


def test_duplicate_keys_are_refused_not_silently_dropped() -> None:
    data = b'{"records": [{"kind": "assessment", "answers": {"9": 3, "9": 0}}]}'
    result = parse_json(data, source="f.json")
    assert result.records == []
    assert result.problems[0].line() == "f.json: not valid JSON: duplicate key '9' in one object"


def test_not_json_is_one_problem_for_the_file() -> None:
    result = parse_json(b"\xff\xfe{", source="f.json")
    assert len(result.problems) == 1 and result.problems[0].line().startswith("f.json: not valid JSON")


def test_json_decimals_keep_the_precision_they_were_written_with() -> None:
    from decimal import Decimal

    from adapter import fhir
    from adapter.mappings.medication import order_to_fhir
    from adapter.pipeline import context
    from adapter.records.chart import assemble
    from adapter.settings import Settings

    directory = parse_json((FIXTURES / "clinic" / "directory.json").read_bytes(), source="directory.json")
    order = {
        "kind": "medication_order",
        "id": "mo-dec",
        "client": "cl-x",
        "program": "prog-omh",
        "drug": {"rxnorm": "312938", "text": "sertraline 50 MG Oral Tablet"},
        "prescriber": "pr-castillo",
        "authored_at": "2026-03-01T10:00:00-05:00",
        "status": "active",
        "dosage": {"text": "12.50 mg daily", "dose_value": "PLACEHOLDER", "dose_unit": "mg", "frequency": 1},
    }
    client = {
        "kind": "client",
        "id": "cl-x",
        "program": "prog-omh",
        "identifiers": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN1", "type": "MR"}],
        "names": [{"family": "Example", "given": ["Ada"]}],
        "birth_date": "1990-01-01",
        "gender": "female",
    }
    text = orjson.dumps({"records": [client, order]}).replace(b'"PLACEHOLDER"', b"12.50")
    loaded = parse_json(text, source="orders.json")
    assert not loaded.problems
    (record,) = [r.record for r in loaded.records if r.record.kind == "medication_order"]
    assert str(record.dosage.dose_value) == "12.50" and record.dosage.dose_value == Decimal("12.5")
    clinic = assemble([*directory.records, *loaded.records])
    (request,) = order_to_fhir(record, context(clinic, Settings()))
    assert b'"doseQuantity":{"value":12.50,' in fhir.dumps(request)  # FHIR decimals keep their precision


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_numbers_are_refused(constant: bytes) -> None:
    loaded = parse_json(b'{"kind": "client", "id": "c", "x": ' + constant + b"}", source="bad.json")
    assert not loaded.records and "is not a JSON number" in loaded.problems[0].message


def test_a_lone_surrogate_escape_is_a_problem_of_its_record_not_a_crash() -> None:
    items = _clinic_items()
    client = next(i for i in items if i["kind"] == "client")
    data = orjson.dumps({"records": items}).replace(
        orjson.dumps(client["id"]), orjson.dumps(client["id"]) + b',"note_x":"\\ud800"', 1
    )
    result = parse_json(data, source="f.json")
    assert [(p.record_id, p.message) for p in result.problems] == [
        (client["id"], "a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not a character")
    ]
    assert len(result.records) == len(items) - 1
