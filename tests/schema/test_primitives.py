"""The R4 primitive schemas, value by value, and the narrative regex against a real XML parse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import SchemaValidator, ValidationError

from adapter.schema.primitives import SIMPLE_XHTML, primitive, reference_string, simple_xhtml

XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">'

VALID: dict[str, list[Any]] = {
    "boolean": [True, False],
    "integer": [0, -(2**31), 2**31 - 1],
    "unsignedInt": [0, 5],
    "positiveInt": [1, 2**31 - 1],
    "decimal": [0, -3, Decimal("14.50"), Decimal("1E+2"), 1.5, 10**20],
    "string": ["a", " padded ", "multi\nline", "\u00e9t\u00e9"],
    "markdown": ["**bold**"],
    "code": ["final", "entered-in-error", "a b", "F33.1"],
    "id": ["a", "A-1.b", "x" * 64],
    "uri": ["http://loinc.org", "urn:oid:1.2.3", "Patient/1"],
    "canonical": ["http://hl7.org/fhir/StructureDefinition/Patient|4.0.1"],
    "url": ["https://example.org/fhir", "mailto:a@example.org", "Patient/1"],
    "oid": ["urn:oid:2.16.840.1.113883.3.4321"],
    "uuid": ["urn:uuid:6f1d2f3e-8a4b-4c6d-9e0f-b1a2c3d4e5f6"],
    "base64Binary": ["U3ludGhldGlj", "YQ==", "YWI=", "QUJD\nREVG"],
    "date": ["2024", "2024-02", "2024-02-29", "2000-02-29", "0001-01-01"],
    "dateTime": [
        "2024",
        "2024-03",
        "2024-03-05",
        "2024-03-05T09:30:00Z",
        "2024-03-05T09:30:00.123+14:00",
        "2016-12-31T23:59:60Z",
    ],
    "instant": ["2024-03-05T09:30:00Z", "2024-03-05T09:30:00.000-05:00"],
    "time": ["00:00:00", "23:59:59.999"],
    "xhtml": [f"{XHTML}<p>x</p></div>", '<div class="n" xmlns="http://www.w3.org/1999/xhtml"><table/></div>'],
}
INVALID: dict[str, list[Any]] = {
    "boolean": ["true", 1, 0, None],
    "integer": [True, 1.0, "1", 2**31, -(2**31) - 1],
    "unsignedInt": [-1],
    "positiveInt": [0],
    "decimal": ["1.5", True, Decimal("NaN"), Decimal("Infinity"), float("inf"), float("nan"), None],
    "string": ["", 5],
    "code": ["", " final", "final ", "a  b", "a\tb"],
    "id": ["", "a b", "a/b", "x" * 65, "a_b"],
    "uri": ["", "not a uri", "http://a b"],
    "url": ["", "http://a b", "1http://x"],
    "oid": ["1.2.3", "urn:oid:3.1", "urn:oid:1.02"],
    "uuid": [
        "6f1d2f3e-8a4b-4c6d-9e0f-b1a2c3d4e5f6",
        "urn:uuid:6F1D2F3E-8A4B-4C6D-9E0F-B1A2C3D4E5F6",
        "urn:uuid:6f1d2f3e-8a4b-5c6d-9e0f-b1a2c3d4e5f6",
    ],  # v5: fhir.resources takes only v4
    "base64Binary": ["", "abc", "a===", "QU!J", "===="],
    "date": ["2024-13", "2024-02-30", "2023-02-29", "1900-02-29", "0000", "2024-1-5", "2024-03-05T10:00:00Z"],
    "dateTime": [
        "2024-03-05T09:30Z",
        "2024-03-05T09:30:00",
        "2024-03-05T24:00:00Z",
        "2024-03-05T09:30:00+15:00",
        "2024-03-05 09:30:00Z",
        "2024-04-31",
    ],
    "instant": ["2024-03-05", "2024-03-05T09:30:00", "2024-03-05T09:30Z"],
    "time": ["24:00:00", "10:00", "10:00:00Z"],
    "xhtml": [
        "<p>x</p>",
        "plain",
        f"{XHTML}<p>x</div>",
        '<div xmlns="http://example.org">x</div>',
        f"{XHTML}&nbsp;</div>",
        '<!DOCTYPE div><div xmlns="http://www.w3.org/1999/xhtml"/>',
    ],
}


def _accepts(schema: Any, value: Any) -> bool:
    try:
        SchemaValidator(schema).validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in VALID.items() for v in vs])
def test_valid_value(name: str, value: Any) -> None:
    assert _accepts(primitive(name), value)


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in INVALID.items() for v in vs])
def test_invalid_value(name: str, value: Any) -> None:
    assert not _accepts(primitive(name), value)


@pytest.mark.parametrize(
    ("targets", "value", "ok"),
    [
        (frozenset({"Patient", "Group"}), "Patient/p-1", True),
        (frozenset({"Patient", "Group"}), "Patient/p-1/_history/2", True),
        (frozenset({"Patient", "Group"}), "https://fhir.example.org/r4/Patient/p-1", True),
        (frozenset({"Patient", "Group"}), "urn:uuid:6f1d2f3e-8a4b-5c6d-9e0f-b1a2c3d4e5f6", True),
        (frozenset({"Patient", "Group"}), "#contained-1", True),
        (frozenset({"Patient", "Group"}), "Medication/m-1", False),
        (frozenset({"Patient", "Group"}), "https://fhir.example.org/r4/Medication/m-1", False),
        (frozenset({"Patient", "Group"}), "PatientX/p-1", False),
        (frozenset({"Patient", "Group"}), "Patient/", False),
        (frozenset({"Patient", "Group"}), "Patient/a b", False),
        (None, "Medication/m-1", True),
        (frozenset({"Resource"}), "Anything/1", True),
        (None, "patient/1", False),
    ],
)
def test_reference_patterns(targets: frozenset[str] | None, value: str, ok: bool) -> None:
    assert _accepts(reference_string(targets), value) is ok


# Narratives generated from the SIMPLE_XHTML grammar; each must also pass the full (parsing) xhtml check, which
# is what makes the fast tier's regex-only narrative check safe.
def _xml_char(char: str) -> bool:
    """A character XML 1.0 allows in text (no C0 controls but tab/newline/CR, no U+FFFE/U+FFFF)."""
    return (ord(char) >= 0x20 or char in "\t\n\r") and char not in "\ufffe\uffff"


_text = st.text(alphabet=st.characters(exclude_characters="<>&", exclude_categories=["Cs"]), max_size=12).map(
    lambda s: "".join(c for c in s if _xml_char(c))
)
_entity = st.sampled_from(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#x27;", "&#39;"])
_inline_text = st.lists(st.one_of(_text, _entity), max_size=4).map("".join)
_inline = st.lists(
    st.one_of(
        _inline_text,
        st.just("<br/>"),
        st.tuples(st.sampled_from(["b", "i", "em", "strong", "code", "span"]), _inline_text).map(
            lambda t: f"<{t[0]}>{t[1]}</{t[0]}>"
        ),
    ),
    max_size=4,
).map("".join)
_block = st.one_of(
    _inline.map(lambda s: f"<p>{s}</p>"),
    st.tuples(st.sampled_from(["ul", "ol"]), st.lists(_inline, max_size=3)).map(
        lambda t: f"<{t[0]}>" + "".join(f"<li>{li}</li>" for li in t[1]) + f"</{t[0]}>"
    ),
)
_narrative = st.lists(st.one_of(_block, _inline), max_size=4).map(lambda parts: XHTML + "".join(parts) + "</div>")


@settings(max_examples=200, derandomize=True, deadline=None)
@given(_narrative)
def test_simple_xhtml_is_a_subset_of_parsed_xhtml(div: str) -> None:
    assert _accepts(simple_xhtml(), div), div
    assert _accepts(primitive("xhtml"), div), div


@pytest.mark.parametrize(
    "div",
    [
        f"{XHTML}<p>a<b>b<i>c</i></b></p></div>",
        '<div xmlns="http://www.w3.org/1999/xhtml" lang="en">x</div>',
        f"{XHTML}<table><tr><td>x</td></tr></table></div>",
        f"{XHTML}&#169;</div>",
    ],
)
def test_richer_narratives_need_the_full_parse(div: str) -> None:
    assert not _accepts(simple_xhtml(), div)
    assert _accepts(primitive("xhtml"), div)


def test_simple_xhtml_pattern_is_anchored() -> None:
    assert SIMPLE_XHTML.startswith("^") and SIMPLE_XHTML.endswith("$")
