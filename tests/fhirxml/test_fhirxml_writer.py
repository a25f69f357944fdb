"""The XML writer: the FHIR XML rules one at a time, and the errors it raises for dicts with no XML form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from adapter.errors import FhirValidationError, UnsafeInputError
from adapter.fhirxml.reader import from_xml
from adapter.fhirxml.writer import to_xml

DECL = b"<?xml version='1.0' encoding='UTF-8'?>\n"
XHTML_DIV = '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>'


def body(xml: bytes) -> str:
    assert xml.startswith(DECL)
    return xml[len(DECL) :].decode()


def basic(**members: Any) -> dict[str, Any]:
    return {"resourceType": "Basic", "code": {"text": "t"}, **members}


def test_root_namespace_and_resource_id_element() -> None:
    assert body(to_xml({"resourceType": "Basic", "id": "b1", "code": {"text": "t"}})) == (
        '<Basic xmlns="http://hl7.org/fhir"><id value="b1"/><code><text value="t"/></code></Basic>'
    )


def test_element_order_is_the_specification_order_not_the_dict_order() -> None:
    forward = {
        "resourceType": "Flag",
        "id": "f",
        "status": "active",
        "code": {"text": "c"},
        "subject": {"reference": "Patient/p"},
    }
    backward = dict(reversed(list(forward.items())))
    assert to_xml(forward) == to_xml(backward)
    assert body(to_xml(backward)).index("<status") < body(to_xml(backward)).index("<code")


def test_datatype_id_and_extension_url_are_attributes() -> None:
    xml = body(to_xml(basic(extension=[{"id": "e1", "url": "http://example.org/x", "valueCode": "a"}])))
    assert '<extension id="e1" url="http://example.org/x"><valueCode value="a"/></extension>' in xml


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("14.50"), "14.50"),
        (8, "8"),  # fhir.resources writes "8.0"
        (Decimal("8"), "8"),
        (Decimal("-0.001"), "-0.001"),
        (Decimal("1E+2"), "1E+2"),
        (0.5, "0.5"),
    ],
)
def test_decimals_are_written_verbatim(value: Any, text: str) -> None:
    xml = body(to_xml(basic(extension=[{"url": "http://example.org/d", "valueDecimal": value}])))
    assert f'<valueDecimal value="{text}"/>' in xml


def test_booleans_and_integers() -> None:
    xml = body(
        to_xml(
            basic(
                extension=[
                    {"url": "http://example.org/b", "valueBoolean": False},
                    {"url": "http://example.org/i", "valueInteger": -3},
                ]
            )
        )
    )
    assert '<valueBoolean value="false"/>' in xml
    assert '<valueInteger value="-3"/>' in xml


def test_primitive_extension_and_array_with_null_placeholders() -> None:
    ext = {"extension": [{"url": "http://example.org/n", "valueString": "n"}]}
    patient = {
        "resourceType": "Patient",
        "name": [{"given": ["A", None, "C"], "_given": [None, ext, {"id": "g3"}]}],
    }
    xml = body(to_xml(patient))
    assert (
        '<name><given value="A"/><given><extension url="http://example.org/n"><valueString value="n"/>'
        '</extension></given><given id="g3" value="C"/></name>'
    ) in xml
    assert from_xml(to_xml(patient)) == patient


def test_primitive_array_with_extensions_only() -> None:
    ext = {"extension": [{"url": "http://example.org/n", "valueString": "n"}]}
    patient = {"resourceType": "Patient", "name": [{"_given": [ext, ext]}]}
    assert body(to_xml(patient)).count("<given><extension") == 2
    assert from_xml(to_xml(patient)) == patient


def test_nested_resources_are_wrapped_in_an_element_named_for_their_type() -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "resource": {"resourceType": "Patient", "id": "p"}},
            {"name": "flag", "valueBoolean": True},
        ],
    }
    xml = body(to_xml(parameters))
    assert (
        '<parameter><name value="patient"/><resource><Patient><id value="p"/></Patient></resource></parameter>' in xml
    )
    assert from_xml(to_xml(parameters)) == parameters
    contained = basic(contained=[{"resourceType": "Organization", "id": "o"}])
    assert '<contained><Organization><id value="o"/></Organization></contained>' in body(to_xml(contained))


def test_narrative_div_is_xhtml() -> None:
    resource = basic(text={"status": "generated", "div": XHTML_DIV})
    assert f'<text><status value="generated"/>{XHTML_DIV}</text>' in body(to_xml(resource))


def test_extension_value_meta_from_r4_round_trips() -> None:
    """R4 allows Extension.valueMeta; the R4B models dropped it, the XML layout restores it."""
    resource = basic(extension=[{"url": "http://example.org/m", "valueMeta": {"versionId": "2"}}])
    assert '<valueMeta><versionId value="2"/></valueMeta>' in body(to_xml(resource))
    assert from_xml(to_xml(resource)) == resource


def test_strings_are_escaped() -> None:
    resource = basic(code={"text": 'a < b & "c"\nd'})
    assert from_xml(to_xml(resource)) == resource


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        (basic(bogus=1), None),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "component": [{"code": {"text": "c"}, "bogus": 1}],
            },
            "component[0]",
        ),
        (basic(extension=[{"url": "http://x", "valueBoolean": "true"}]), "extension[0].valueBoolean"),
        (basic(extension=[{"url": "http://x", "valueInteger": True}]), "extension[0].valueInteger"),
        (basic(extension=[{"url": "http://x", "valueDecimal": Decimal("NaN")}]), "extension[0].valueDecimal"),
        (basic(extension=[{"url": "http://x", "valueString": ""}]), "extension[0].valueString"),
        (basic(extension=[{"url": "http://x", "valueString": "a\x00b"}]), "extension[0].valueString"),
        (basic(created=None), "created"),
        (basic(identifier={"value": "x"}), "identifier"),
        (basic(code=[{"text": "x"}]), "code"),
        ({"resourceType": "Patient", "name": [{"given": ["a"], "_given": [None, None]}]}, "name[0].given"),
        (basic(text={"status": "generated", "div": "<div><p>no namespace</p></div>"}), "text.div"),
        (
            basic(text={"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'><p></div>"}),
            "text.div",
        ),
        (basic(contained=[{"resourceType": "Quantity"}]), "contained[0]"),
        ({"resourceType": "NotAType"}, None),
    ],
)
def test_dicts_without_an_xml_form_raise_with_the_path(resource: dict[str, Any], field: str | None) -> None:
    with pytest.raises(FhirValidationError) as info:
        to_xml(resource)
    assert info.value.problems[0].field == field


def test_error_messages_do_not_carry_values() -> None:
    with pytest.raises(FhirValidationError) as info:
        to_xml(basic(extension=[{"url": "http://x", "valueBoolean": "secret-value"}]))
    assert "secret-value" not in str(info.value)
    assert "expected a boolean, got str" in str(info.value)


def test_a_div_with_a_dtd_is_unsafe() -> None:
    div = '<!DOCTYPE div [<!ENTITY x "y">]><div xmlns="http://www.w3.org/1999/xhtml">&x;</div>'
    with pytest.raises(UnsafeInputError):
        to_xml(basic(text={"status": "generated", "div": div}))


def test_errors_inside_a_bundle_name_the_full_path() -> None:
    bad = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": "1"},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": basic()}, {"resource": bad}],
    }
    with pytest.raises(FhirValidationError) as info:
        to_xml(bundle)
    assert info.value.problems[0].field == "entry[1].resource.valueQuantity.value"


def test_absurd_nesting_is_an_error_not_a_crash() -> None:
    ext: dict[str, Any] = {"url": "http://x", "valueString": "x"}
    for _ in range(2000):
        ext = {"url": "http://x", "extension": [ext]}
    with pytest.raises(FhirValidationError, match="nested too deeply"):
        to_xml(basic(extension=[ext]))
