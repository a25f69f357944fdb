"""XML record input: the same records as JSON, values typed by the model, problems located by line."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from adapter.errors import InputError, UnsafeInputError
from adapter.records import RECORD_KINDS, Assessment, MedicationOrder
from adapter.records.chart import assemble
from adapter.records.loader import load_paths, parse_xml, validate_items
from adapter.records.xml_input import NAMESPACE, schema, xml_to_items
from tests.records.model_walk import MODELS, spec_of

DATA = Path(__file__).parent / "data"


def xml(body: str, *, root: str = "records") -> bytes:
    return f'<{root} xmlns="{NAMESPACE}">{body}</{root}>'.encode()


def note(written_at: str = "2024-03-01T10:00:00Z", text: str = "Seen today.") -> str:
    return (
        "<progress_note><id>n-1</id><client>c-1</client><program>p-1</program>"
        f"<note_kind>progress-note</note_kind><author>pr-1</author><written_at>{written_at}</written_at>"
        f"<text>{text}</text></progress_note>"
    )


def problem_lines(exc: pytest.ExceptionInfo[InputError]) -> list[str]:
    return exc.value.lines()


# ---- the same records in both forms ----------------------------------------------------------------------


def test_xml_and_json_exports_load_the_same_records() -> None:
    from_json = load_paths([DATA / "clinic.json"])
    from_xml = load_paths([DATA / "clinic.xml"])
    assert from_json.problems == [] and from_xml.problems == []
    assert [r.record for r in from_xml.records] == [r.record for r in from_json.records]
    assert assemble(r for r in from_xml.records).problems == []


def test_xml_items_are_the_json_items() -> None:
    json_items = orjson.loads((DATA / "clinic.json").read_bytes())["records"]
    xml_items = xml_to_items((DATA / "clinic.xml").read_bytes(), source="clinic.xml")
    # The one difference: XML keeps a decimal as written, where JSON has a number.
    for item in json_items:
        if isinstance(item.get("dosage"), dict) and "dose_value" in item["dosage"]:
            item["dosage"]["dose_value"] = str(item["dosage"]["dose_value"])
    assert xml_items == json_items


def test_the_sample_sets_every_field_of_every_model() -> None:
    # So that the two tests above cover every field shape the converter has to get right.
    seen: set[tuple[str, str]] = set()

    def walk(value: dict[str, Any], model: type[BaseModel]) -> None:
        for name, field_value in value.items():
            seen.add((model.__name__, name))
            nested = spec_of(model.model_fields[name]).value if name in model.model_fields else None
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                for part in field_value if isinstance(field_value, list) else [field_value]:
                    walk(part, nested)

    for item in orjson.loads((DATA / "clinic.json").read_bytes())["records"]:
        model = RECORD_KINDS[item["kind"]]
        assert issubclass(model, BaseModel)
        walk(item, model)
    every = {(name, f) for name, model in MODELS.items() for f in model.model_fields if f != "kind"}
    assert every - seen == set()


# ---- values typed by the model's annotations -------------------------------------------------------------


def test_a_record_element_may_be_the_root() -> None:
    items = xml_to_items(
        xml(note()[len("<progress_note>") : -len("</progress_note>")], root="progress_note"), source="x"
    )
    assert [i["kind"] for i in items] == ["progress_note"]


def test_an_empty_export_has_no_records() -> None:
    assert xml_to_items(xml(""), source="x") == []


def test_integers_booleans_and_answers_take_their_json_types() -> None:
    body = (
        "<assessment><id>a-1</id><client>c-1</client><program>p-1</program><instrument>phq-2</instrument>"
        "<administered_at>2024-03-01T10:00:00+01:00</administered_at><self_reported>true</self_reported>"
        '<answers><answer item="1">2</answer><answer item="44255-8">LA6569-3</answer>'
        '<answer item="x">false</answer></answers><stated_total> 3 </stated_total></assessment>'
    )
    (item,) = xml_to_items(xml(body), source="x")
    assert item["self_reported"] is True
    assert item["stated_total"] == 3
    assert item["answers"] == {"1": 2, "44255-8": "LA6569-3", "x": False}
    record = validate_items([item], source="x")
    # Validation goes on to the instrument checks (item "x" is no PHQ-2 item); the types went through.
    assert all("valid" not in p.message for p in record.problems)
    assert Assessment.model_validate_json(orjson.dumps(item), strict=True).answers["x"] is False


def test_a_decimal_keeps_its_digits() -> None:
    body = (
        "<medication_order><id>m-1</id><client>c-1</client><program>p-1</program>"
        "<drug><text>lorazepam 0.5 MG Oral Tablet</text></drug><prescriber>pr-1</prescriber>"
        "<authored_at>2024-03-01T10:00:00Z</authored_at><status>active</status>"
        "<dosage><text>0.50 mg at night</text><dose_value>0.50</dose_value><dose_unit>mg</dose_unit></dosage>"
        "</medication_order>"
    )
    (item,) = xml_to_items(xml(body), source="x")
    assert item["dosage"]["dose_value"] == "0.50"
    result = validate_items([item], source="x")
    assert result.problems == []
    record = result.records[0].record
    assert isinstance(record, MedicationOrder) and record.dosage is not None
    assert str(record.dosage.dose_value) == "0.50" and record.dosage.dose_value == Decimal("0.5")


def test_whitespace_and_comments_do_not_change_a_record() -> None:
    plain = xml_to_items(xml(note(text="Seen today.\nPlan unchanged.")), source="x")
    spaced = xml_to_items(
        xml(
            "\n  <!-- exported 2024-03-01 -->\n"
            + note(written_at="\n  2024-03-01T10:00:00Z  ", text="\n    Seen today.\nPlan unchanged.\n  ")
            .replace("<id>n-1</id>", "<id> n-1 </id><!-- the EHR's note id -->")
            .replace("<client>", "\n    <client>")
        ),
        source="x",
    )
    assert spaced == plain


def test_lists_repeat_their_element() -> None:
    body = (
        "<practitioner><id>pr-1</id><name><family>Lind</family><given>Maren</given><given>E</given></name>"
        "<credentials>LCSW</credentials><credentials>LADC</credentials></practitioner>"
    )
    (item,) = xml_to_items(xml(body), source="x")
    assert item == {
        "kind": "practitioner",
        "id": "pr-1",
        "name": {"family": "Lind", "given": ["Maren", "E"]},
        "credentials": ["LCSW", "LADC"],
    }


# ---- problems: refused or located by line, the namespace left out -----------------------------------------


def test_a_naive_datetime_is_a_schema_problem_on_its_line() -> None:
    data = xml("\n" + note(written_at="2024-03-01T10:00:00"))
    with pytest.raises(InputError) as exc:
        xml_to_items(data, source="notes.xml")
    (line,) = problem_lines(exc)
    assert line.startswith("notes.xml: line 2: Element 'written_at': [facet 'pattern'] The value is not accepted")
    # Neither the value (it may be PHI) nor the namespace (the same everywhere) is repeated.
    assert "2024-03-01T10:00:00" not in line
    assert "{" + NAMESPACE not in line and "{" + NAMESPACE not in str(exc.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            note().replace("<author>", "<signed_by>x</signed_by><author>"),
            "Element 'signed_by': This element is not",
        ),
        (
            note().replace("progress-note", "therapy"),
            "Element 'note_kind': [facet 'enumeration'] The value is not an element",
        ),
        (
            note().replace("<text>Seen today.</text>", ""),
            "Missing child element(s). Expected is one of ( status, text )",
        ),
        (
            note().replace("<id>n-1</id>", "<id>n 1</id>"),
            "Element 'id': [facet 'pattern'] The value is not accepted",
        ),
        (
            note().replace("<id>n-1</id><client>", "<client>"),
            "Element 'client': This element is not expected. Expected is ( id )",
        ),
    ],
    ids=["unknown-element", "not-in-enumeration", "missing-element", "bad-id", "out-of-order"],
)
def test_structural_problems_come_from_the_schema(body: str, expected: str) -> None:
    with pytest.raises(InputError) as exc:
        xml_to_items(xml(body), source="x.xml")
    (line,) = problem_lines(exc)
    assert line.startswith("x.xml: line 1: ") and expected in line


def test_one_answer_per_item() -> None:
    body = (
        "<assessment><id>a-1</id><client>c-1</client><program>p-1</program><instrument>phq-2</instrument>"
        "<administered_at>2024-03-01T10:00:00Z</administered_at>"
        '<answers><answer item="1">2</answer><answer item="1">1</answer></answers></assessment>'
    )
    with pytest.raises(InputError) as exc:
        xml_to_items(xml(body), source="x")
    assert "Duplicate key-sequence ['1']" in problem_lines(exc)[0]


@pytest.mark.parametrize("value", ["1", "0", "True", "yes"], ids=["one", "zero", "capitalised", "yes"])
def test_booleans_are_true_or_false(value: str) -> None:
    body = (
        "<visit><id>v-1</id><client>c-1</client><program>p-1</program><type>intake</type>"
        f"<telehealth>{value}</telehealth><period><start>2024-03-01T10:00:00Z</start>"
        "<end>2024-03-01T11:00:00Z</end></period></visit>"
    )
    with pytest.raises(InputError) as exc:
        xml_to_items(xml(body), source="x")
    assert "Element 'telehealth'" in problem_lines(exc)[0]
    assert xml_to_items(xml(body.replace(f">{value}<", ">true<")), source="x")[0]["telehealth"] is True


def test_integers_beyond_64_bits_are_refused() -> None:
    body = (
        "<assessment><id>a-1</id><client>c-1</client><program>p-1</program><instrument>phq-2</instrument>"
        "<administered_at>2024-03-01T10:00:00Z</administered_at>"
        '<answers><answer item="1">0</answer></answers>'
        "<stated_total>99999999999999999999</stated_total></assessment>"
    )
    # The loader re-encodes items with orjson, which stops at 64 bits: the schema keeps them out.
    with pytest.raises(InputError) as exc:
        xml_to_items(xml(body), source="x")
    assert "Element 'stated_total'" in problem_lines(exc)[0]


def test_the_namespace_is_required() -> None:
    with pytest.raises(InputError) as exc:
        xml_to_items(b"<records>" + note().encode() + b"</records>", source="x")
    assert "No matching global declaration available for the validation root" in problem_lines(exc)[0]


def test_malformed_xml_names_its_line() -> None:
    with pytest.raises(InputError) as exc:
        xml_to_items(xml("\n" + note().replace("</text>", "")), source="x")
    assert problem_lines(exc)[0].startswith("x: line ")


def test_a_dtd_is_refused() -> None:
    data = b'<?xml version="1.0"?>\n<!DOCTYPE records [<!ENTITY a "x">]>\n' + xml(note().replace("Seen", "&a;"))
    with pytest.raises(UnsafeInputError):
        xml_to_items(data, source="x")


def test_the_loader_reports_xml_problems_per_file() -> None:
    result = parse_xml(xml(note(written_at="2024-03-01T10:00:00")), source="in.xml")
    assert result.records == []
    (problem,) = result.problems
    assert problem.line().startswith("in.xml: line 1: Element 'written_at'")


def test_the_schema_is_compiled_once_per_thread() -> None:
    assert schema() is schema()
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(schema()))
    thread.start()
    thread.join()
    assert other[0] is not schema()


@pytest.mark.parametrize(
    ("field", "value"),
    [("written_at", "Rivera's visit 2024-03-01"), ("id", "Ana's chart MRN-1001"), ("client", "O'Brien, 'Ana'")],
)
def test_a_value_with_quotes_is_left_out_of_the_message_whole(field: str, value: str) -> None:
    """libxml2 quotes the offending value; a quote inside it (Rivera's) must not cut the removal short."""
    body = note().replace(f"<{field}>", f"<{field}>{value}<!--", 1).replace(f"</{field}>", f"--></{field}>", 1)
    with pytest.raises(InputError) as exc:
        xml_to_items(xml(body), source="notes.xml")
    for line in problem_lines(exc):
        assert not any(part in line for part in ("Rivera", "Ana", "Brien", "MRN-1001")), line
