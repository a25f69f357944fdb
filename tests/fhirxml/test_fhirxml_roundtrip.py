"""JSON -> XML -> JSON is lossless, and fhir.resources (the reference implementation) reads our XML as it
reads the JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from lxml import etree

from adapter.fhir import model_class
from adapter.fhirxml.reader import from_xml
from adapter.fhirxml.writer import to_xml

from .samples import ALL, BUNDLE, CARE_PLAN, OBSERVATION, PATIENT, QUESTIONNAIRE_RESPONSE

IDS = [r["resourceType"] for r in ALL]


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return orjson.Fragment(str(obj))
    raise TypeError(type(obj).__name__)


def canonical_json(resource: dict[str, Any]) -> bytes:
    """The JSON text with sorted keys: equal only if every value, decimal text included, is equal."""
    return orjson.dumps(resource, default=_default, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("resource", ALL, ids=IDS)
@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
def test_json_xml_json_is_identical(resource: dict[str, Any], pretty: bool) -> None:
    back = from_xml(to_xml(resource, pretty=pretty))
    assert back == resource
    assert canonical_json(back) == canonical_json(resource)


def test_decimal_text_is_preserved_both_ways() -> None:
    xml = to_xml(OBSERVATION)
    assert b'<value value="14.50"/>' in xml
    value = from_xml(xml)["valueQuantity"]["value"]
    assert isinstance(value, Decimal)
    assert str(value) == "14.50"
    weight = from_xml(to_xml(QUESTIONNAIRE_RESPONSE))["item"][4]["answer"][0]["valueDecimal"]
    assert str(weight) == "72.0"


def test_instants_are_not_reformatted() -> None:
    xml = to_xml(OBSERVATION)
    assert b'<issued value="2024-03-05T14:31:12.000Z"/>' in xml
    assert b'<effectiveDateTime value="2024-03-05T09:30:00-05:00"/>' in xml


def test_xml_is_stable_after_one_round_trip() -> None:
    """XML -> JSON -> XML gives the same bytes: nothing drifts on repeated conversion."""
    for resource in ALL:
        xml = to_xml(resource)
        assert to_xml(from_xml(xml)) == xml


def test_pretty_output_leaves_the_narrative_untouched() -> None:
    pretty = to_xml(CARE_PLAN, pretty=True)
    assert CARE_PLAN["text"]["div"].encode() in pretty
    assert b"\n  <status" in pretty  # and the FHIR elements are indented


def test_pretty_and_compact_hold_the_same_content() -> None:
    compact = etree.fromstring(to_xml(BUNDLE))
    pretty = etree.fromstring(to_xml(BUNDLE, pretty=True))
    for el in pretty.iter("{http://hl7.org/fhir}*"):  # drop the indentation, which lives only in FHIR elements
        if el.text is not None and not el.text.strip():
            el.text = None
        for child in el:
            child.tail = None
    assert etree.tostring(pretty, method="c14n") == etree.tostring(compact, method="c14n")


# --- fhir.resources as the reference reader -------------------------------------------------------------


def _div(text: str) -> str:
    # fhir.resources re-serialises the div with ASCII character references (café -> caf&#233;).
    return etree.tostring(etree.fromstring(text.encode()), encoding="unicode")


def _normalise(node: Any, key: str = "") -> Any:
    """Undo fhir.resources' known normalisations so that real differences stand out:
    decimals go through float; primitive ids (`_birthDate.id`) are dropped by its XML reader; the div is
    re-serialised. Timestamps need nothing here: model_dump() gives datetime objects on both sides."""
    if isinstance(node, dict):
        out = {k: _normalise(v, k) for k, v in node.items()}
        if key.startswith("_"):
            out.pop("id", None)
        return out
    if isinstance(node, list):
        return [_normalise(v, key) for v in node]
    if isinstance(node, Decimal | float) and not isinstance(node, bool):
        return float(node)
    if key == "div" and isinstance(node, str):
        return _div(node)
    return node


@pytest.mark.parametrize("resource", ALL, ids=IDS)
def test_fhir_resources_reads_our_xml_as_it_reads_the_json(resource: dict[str, Any]) -> None:
    cls = model_class(resource["resourceType"])
    from_our_xml = cls.model_validate_xml(to_xml(resource)).model_dump()
    from_json = cls.model_validate(resource).model_dump()
    assert _normalise(from_our_xml) == _normalise(from_json)


def test_fhir_resources_reads_our_pretty_xml() -> None:
    cls = model_class("Bundle")
    assert _normalise(cls.model_validate_xml(to_xml(BUNDLE, pretty=True)).model_dump()) == _normalise(
        cls.model_validate(BUNDLE).model_dump()
    )


def test_primitive_id_is_written_as_attribute() -> None:
    """The one normalisation above that is fhir.resources' loss, not ours: we keep `_birthDate.id`."""
    xml = to_xml(PATIENT)
    assert b'<birthDate id="bd1" value="1988-07-14">' in xml
    assert from_xml(xml)["_birthDate"]["id"] == "bd1"
