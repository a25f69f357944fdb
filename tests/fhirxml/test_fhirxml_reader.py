"""The XML reader: types from the definitions, and strict refusal of anything FHIR XML does not allow."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.errors import InputError, UnsafeInputError
from adapter.fhirxml.reader import from_xml

NS = 'xmlns="http://hl7.org/fhir"'


def test_types_come_from_the_definitions() -> None:
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
    <!-- a comment is ignored -->
    <Observation {NS}>
      <status value="final"/>
      <code><text value="x"/></code>
      <valueQuantity><value value="14.50"/></valueQuantity>
      <referenceRange><low><value value="0"/></low></referenceRange>
      <component><code><text value="a"/></code><valueBoolean value="true"/></component>
      <component><code><text value="b"/></code><valueInteger value="-7"/></component>
    </Observation>""".encode()
    assert from_xml(xml) == {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": Decimal("14.50")},
        "referenceRange": [{"low": {"value": 0}}],
        "component": [
            {"code": {"text": "a"}, "valueBoolean": True},
            {"code": {"text": "b"}, "valueInteger": -7},
        ],
    }
    value = from_xml(xml)["valueQuantity"]["value"]
    assert str(value) == "14.50"


def test_integral_decimals_are_ints_like_adapter_fhir_loads() -> None:
    xml = (
        f'<Observation {NS}><status value="final"/><code><text value="x"/></code>'
        '<valueQuantity><value value="8"/></valueQuantity></Observation>'
    )
    value = from_xml(xml.encode())["valueQuantity"]["value"]
    assert value == 8
    assert type(value) is int


def test_prefixed_xhtml_div_becomes_the_json_form() -> None:
    xml = (
        f'<Basic {NS} xmlns:h="http://www.w3.org/1999/xhtml" xmlns:other="urn:x">'
        '<text><status value="generated"/>'
        '<h:div><h:p>a <h:b>b</h:b></h:p></h:div></text><code><text value="t"/></code></Basic>'
    )
    assert from_xml(xml.encode())["text"]["div"] == (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>a <b>b</b></p></div>'
    )


def _error(xml: str) -> InputError:
    with pytest.raises(InputError) as info:
        from_xml(xml.encode(), source="upload.xml")
    return info.value


@pytest.mark.parametrize(
    ("xml", "field", "words"),
    [
        (
            f'<Basic {NS}><code><text value="t"/></code><bogus value="1"/></Basic>',
            None,
            "unknown element <bogus>",
        ),
        (
            f'<Observation {NS}><status value="final"/><code><text value="t"/></code>'
            "<component><code><foo/></code></component></Observation>",
            "component[0].code",
            "unknown element <foo>",
        ),
        (
            f'<Basic {NS}><code color="red"><text value="t"/></code></Basic>',
            "code",
            "unknown attribute 'color'",
        ),
        (
            f'<Basic {NS}><code><text value="t" lang="en"/></code></Basic>',
            "code.text",
            "unknown attribute 'lang'",
        ),
        (f'<Basic {NS} id="x"><code><text value="t"/></code></Basic>', None, "unknown attribute 'id'"),
        (f'<Basic {NS}><code><text value="t"/></code><id value="x"/></Basic>', None, "<id> is out of order"),
        (
            f'<Basic {NS}><code><text value="t"/></code><code><text value="u"/></code></Basic>',
            None,
            "repeats",
        ),
        (f'<Basic {NS}><code>loose text<text value="t"/></code></Basic>', "code", "text is not allowed"),
        (f'<Basic {NS}><code><text value="t"/></code><created value=""/></Basic>', "created", "empty value"),
        (f'<Basic {NS}><code><text value="t"/></code><created/></Basic>', "created", "needs a value"),
        (
            f'<Patient {NS}><active value="yes"/></Patient>',
            "active",
            "true or false",
        ),
        (
            f'<Patient {NS}><multipleBirthInteger value="2.0"/></Patient>',
            "multipleBirthInteger",
            "not an integer",
        ),
        (
            f'<Patient {NS}><multipleBirthInteger value="1_000"/></Patient>',
            "multipleBirthInteger",
            "not an integer",
        ),
        (
            f'<Observation {NS}><status value="final"/><code><text value="t"/></code>'
            '<valueQuantity><value value="1,5"/></valueQuantity></Observation>',
            "valueQuantity.value",
            "not a decimal",
        ),
        (f'<Quantity {NS}><value value="1"/></Quantity>', None, "not a FHIR resource"),
        ('<Basic xmlns="urn:not-fhir"/>', None, "not a FHIR resource"),
        (f"<Basic {NS}><contained/></Basic>", "contained[0]", "exactly one resource"),
        (f"<Basic {NS}><contained><Coding/></contained></Basic>", "contained[0]", "not a FHIR resource"),
        (
            f'<Basic {NS}><text><status value="generated"/><div><p/></div></text></Basic>',
            "text",
            "unknown element <div>",
        ),
        (
            f'<Basic {NS} xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></Basic>',
            None,
            "unknown element <{http://www.w3.org/2001/XInclude}include>",
        ),
    ],
)
def test_invalid_fhir_xml_is_refused_with_line_and_path(xml: str, field: str | None, words: str) -> None:
    error = _error(xml)
    problem = error.problems[0]
    assert problem.location == "upload.xml"
    assert problem.field == field
    assert words in problem.message
    assert problem.message.startswith("line 1: ")


def test_line_numbers_point_at_the_offending_element() -> None:
    xml = f'<Basic {NS}>\n  <code>\n    <text value="t"/>\n  </code>\n  <nope/>\n</Basic>'
    assert _error(xml).problems[0].message.startswith("line 5: ")


def test_malformed_xml_is_an_input_error_with_the_line() -> None:
    error = _error(f"<Basic {NS}>\n<code>\n</Basic>")
    assert "line 3" in error.problems[0].message
    assert not isinstance(error, UnsafeInputError)


def test_doctype_is_refused_as_unsafe() -> None:
    with pytest.raises(UnsafeInputError, match="DTDs and entities are not allowed"):
        from_xml(f"<!DOCTYPE Basic><Basic {NS}/>".encode())


def test_errors_inside_a_bundle_name_the_full_path() -> None:
    xml = (
        f'<Bundle {NS}><type value="collection"/>'
        '<entry><resource><Basic><code><text value="t"/></code></Basic></resource></entry>'
        '<entry><resource><Observation><status value="final"/><code><text value="t"/></code>'
        '<valueQuantity><value value="one"/></valueQuantity></Observation></resource></entry></Bundle>'
    )
    assert _error(xml).problems[0].field == "entry[1].resource.valueQuantity.value"
