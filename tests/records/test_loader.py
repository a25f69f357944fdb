"""The JSON loader: whole-list fast path, record-by-record fallback, and input it must refuse."""

from __future__ import annotations

import orjson

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
