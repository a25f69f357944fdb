"""docs/records.md stays true: its examples load, its tables list every field with every allowed value."""

from __future__ import annotations

import re
from typing import Literal, get_args, get_origin

import pytest

from adapter.records import RECORD_KINDS, Client
from adapter.records.chart import assemble
from adapter.records.loader import LoadResult, parse_json, validate_items
from adapter.records.xml_input import xml_to_items
from tests.conftest import ROOT
from tests.records.model_walk import MODELS, spec_of

DOC = ROOT / "docs" / "records.md"
TEXT = DOC.read_text(encoding="utf-8")
_FENCE = re.compile(r"^```(?P<info>\w*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_ROW = re.compile(r"^\| `(?P<field>[a-z0-9_]+)` \|(?P<rest>.*)\|$")


def blocks(info: str) -> list[str]:
    return [m["body"] for m in _FENCE.finditer(TEXT) if m["info"] == info]


def json_examples() -> LoadResult:
    result = LoadResult()
    for body in blocks("json"):
        result.extend(parse_json(body.encode(), source="docs/records.md"))
    return result


def sections() -> dict[str, str]:
    """Level-3 sections by heading."""
    parts = re.split(r"^### (.+)$", TEXT, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def test_the_json_examples_load_and_link_up() -> None:
    loaded = json_examples()
    assert [p.line() for p in loaded.problems] == []
    assert [p.line() for p in assemble(loaded.records).problems] == []


def test_every_kind_has_its_example() -> None:
    kinds = sorted({r.record.kind for r in json_examples().records})
    assert kinds == sorted(RECORD_KINDS)


def test_the_xml_example_is_the_json_client() -> None:
    (xml,) = blocks("xml")
    from_xml = validate_items(xml_to_items(xml.encode(), source="docs/records.md"), source="docs/records.md")
    clients = [r.record for r in json_examples().records if isinstance(r.record, Client)]
    assert from_xml.problems == []
    assert [r.record for r in from_xml.records] == clients


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_table_lists_every_field_and_value(name: str) -> None:
    model = MODELS[name]
    heading = next((kind for kind, cls in RECORD_KINDS.items() if cls is model), name)
    rows = {m["field"]: m["rest"] for m in map(_ROW.match, sections()[heading].splitlines()) if m}
    assert list(rows) == [f for f in model.model_fields if f != "kind"], "fields in the model's order"
    for field, info in model.model_fields.items():
        value = spec_of(info).value
        if field != "kind" and get_origin(value) is Literal:
            missing = [v for v in get_args(value) if f"`{v}`" not in rows[field]]
            assert missing == [], f"{field}: allowed values not listed"
