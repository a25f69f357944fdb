"""records.xsd says what the pydantic models say: same fields in the same order, list-ness, requiredness,
value types, Literal enumerations, string patterns and lengths, numeric bounds.

The models are walked here independently of adapter.records.xml_input, so a mistake in the converter's reading
of the annotations cannot hide the same mistake here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, get_args, get_origin

import pytest
from annotated_types import Ge, Gt, MaxLen, MinLen
from lxml import etree
from pydantic import BaseModel
from pydantic.types import StringConstraints

from adapter.fhirxml.secure import parse_untrusted
from adapter.records import RECORD_KINDS
from adapter.records.assessment import _LA_CODE, Assessment
from adapter.records.xml_input import schema
from tests.records.model_walk import MODELS, Spec, scalar_kind, spec_of, unwrap

XS = "{http://www.w3.org/2001/XMLSchema}"


# ---- the XSD side ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Xsd:
    root: etree._Element

    @classmethod
    def load(cls) -> Xsd:
        data = resources.files("adapter.records").joinpath("records.xsd").read_bytes()
        return cls(parse_untrusted(data, source="records.xsd"))

    def named(self, tag: str) -> dict[str, etree._Element]:
        return {e.get("name", ""): e for e in self.root.findall(XS + tag)}

    def sequence(self, type_name: str) -> list[etree._Element]:
        """The element declarations of a complex type, its base's first (xs:extension appends)."""
        complex_type = self.named("complexType")[type_name]
        extension = complex_type.find(f"{XS}complexContent/{XS}extension")
        if extension is not None:
            own = extension.find(XS + "sequence")
            assert own is not None
            return self.sequence(_local(extension.get("base"))) + own.findall(XS + "element")
        own = complex_type.find(XS + "sequence")
        assert own is not None
        return own.findall(XS + "element")

    def simple(self, type_name: str) -> tuple[str, dict[str, list[str]]]:
        """(built-in base, facets) of a simple type, facets of derived types merged."""
        simple_type = self.named("simpleType")[type_name]
        restriction = simple_type.find(XS + "restriction")
        assert restriction is not None, type_name
        base = restriction.get("base", "")
        facets: dict[str, list[str]] = {}
        for facet in restriction:
            facets.setdefault(etree.QName(facet).localname, []).append(facet.get("value", ""))
        if base.startswith("r:"):
            base, inherited = self.simple(_local(base))
            facets = inherited | facets
        return base, facets


def _local(name: str | None) -> str:
    assert name is not None
    return name.split(":", 1)[1] if ":" in name else name


# What each built-in base means on the model side.
_BASES = {
    "xs:token": "text",
    "xs:string": "text",
    "xs:long": "integer",
    "xs:boolean": "boolean",
    "xs:decimal": "decimal",
    "xs:date": "date",
    "xs:dateTime": "instant",
}


@pytest.fixture(scope="module")
def xsd() -> Xsd:
    return Xsd.load()


# ---- the checks ------------------------------------------------------------------------------------------


def test_the_schema_compiles() -> None:
    assert isinstance(schema(), etree.XMLSchema)


def test_roots_are_records_and_every_kind(xsd: Xsd) -> None:
    roots = {name: e.get("type") for name, e in xsd.named("element").items()}
    assert set(roots) == {"records", *RECORD_KINDS}
    for kind, model in RECORD_KINDS.items():
        assert roots[kind] == f"r:{model.__name__}"
    choice = xsd.named("element")["records"].find(f"{XS}complexType/{XS}choice")
    assert choice is not None
    assert [_local(e.get("ref")) for e in choice] == list(RECORD_KINDS)


def test_every_schema_type_is_a_model_or_a_value_type(xsd: Xsd) -> None:
    # No leftover complex type once a model is removed (the two bases are abstract record parts).
    assert set(xsd.named("complexType")) == set(MODELS) | {"ClinicalRecord", "EncounterLinked", "Answers"}
    used = {_local(e.get(a)) for e in xsd.root.iter() for a in ("type", "base") if e.get(a)}
    assert set(xsd.named("simpleType")) <= used, "simple types nothing uses"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fields_match_elements(xsd: Xsd, name: str) -> None:
    model = MODELS[name]
    fields = {f: info for f, info in model.model_fields.items() if f != "kind"}
    elements = xsd.sequence(name)
    assert [e.get("name") for e in elements] == list(fields), "same fields, in the model's order"
    for element in elements:
        field = element.get("name", "")
        spec = spec_of(fields[field])
        where = f"{name}.{field}"
        assert int(element.get("minOccurs", "1")) == spec.min_occurs, where
        assert (element.get("maxOccurs") == "unbounded") == spec.repeated, where
        assert element.get("maxOccurs") in (None, "unbounded"), where
        type_name = _local(element.get("type"))
        if isinstance(spec.value, type) and issubclass(spec.value, BaseModel):
            assert type_name == spec.value.__name__, where
        elif get_origin(spec.value) is dict:
            assert type_name == "Answers", where
        else:
            check_scalar(xsd, where, type_name, spec)


def check_scalar(xsd: Xsd, where: str, type_name: str, spec: Spec) -> None:
    base, facets = xsd.simple(type_name)
    kind = scalar_kind(spec.value)
    assert _BASES[base] == kind, f"{where}: {base} for a {kind}"
    enumeration = list(get_args(spec.value)) if get_origin(spec.value) is Literal else None
    assert facets.get("enumeration") == enumeration, f"{where}: enumeration"
    if kind == "text":
        constraints = [m for m in spec.meta if isinstance(m, StringConstraints)]
        pattern = constraints[0].pattern if constraints else None
        expected = [str(pattern).removeprefix("^").removesuffix("$")] if pattern else None
        assert facets.get("pattern") == expected, f"{where}: pattern"
        for facet, attribute in (("minLength", "min_length"), ("maxLength", "max_length")):
            bound = getattr(constraints[0], attribute) if constraints else None
            assert facets.get(facet) == ([str(bound)] if bound is not None else None), f"{where}: {facet}"
    if kind in ("integer", "decimal"):
        assert lower_bound(spec.meta, kind) == xsd_lower_bound(facets, kind), f"{where}: lower bound"
    for meta in spec.meta:
        assert not isinstance(meta, MaxLen | MinLen), f"{where}: a length the test does not compare"


def lower_bound(meta: tuple[Any, ...], kind: str) -> tuple[str, int] | None:
    for m in meta:
        if isinstance(m, Gt):
            gt = int(str(m.gt))
            return ("inclusive", gt + 1) if kind == "integer" else ("exclusive", gt)
        if isinstance(m, Ge):
            return ("inclusive", int(str(m.ge)))
    return None


def xsd_lower_bound(facets: dict[str, list[str]], kind: str) -> tuple[str, int] | None:
    if "minInclusive" in facets:
        return ("inclusive", int(facets["minInclusive"][0]))
    if "minExclusive" in facets:
        value = int(facets["minExclusive"][0])
        return ("inclusive", value + 1) if kind == "integer" else ("exclusive", value)
    return None


def test_answers_mirror_the_answers_dict(xsd: Xsd) -> None:
    key, value = get_args(unwrap(Assessment.model_fields["answers"].annotation)[0])
    (answer,) = xsd.named("complexType")["Answers"].findall(f"{XS}sequence/{XS}element")
    assert answer.get("name") == "answer"
    min_items = next((m.min_length for m in Assessment.model_fields["answers"].metadata if isinstance(m, MinLen)), 0)
    assert (int(answer.get("minOccurs", "1")), answer.get("maxOccurs")) == (min_items, "unbounded")
    extension = answer.find(f"{XS}complexType/{XS}simpleContent/{XS}extension")
    assert extension is not None
    (item,) = extension.findall(XS + "attribute")
    assert (item.get("name"), item.get("use")) == ("item", "required")
    key_pattern = unwrap(key)[1][0].pattern.removeprefix("^").removesuffix("$")
    assert xsd.simple(_local(item.get("type")))[1]["pattern"] == [key_pattern]
    # An answer: an integer, true/false or an LA code, the three things the model's validator takes.
    assert get_args(unwrap(value)[0]) == (int, bool, str)
    (answer_pattern,) = xsd.simple(_local(extension.get("base")))[1]["pattern"]
    la_code = _LA_CODE.pattern.removeprefix("^").removesuffix("$")
    assert set(answer_pattern.split("|")) == {"[+\\-]?[0-9]{1,18}", "true", "false", la_code}
