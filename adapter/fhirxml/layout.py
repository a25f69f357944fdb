"""How each FHIR type lays out in XML, derived once per type from :mod:`adapter.schema.definitions`.

The writer and the reader share this table so that they cannot disagree. FHIR XML
(http://hl7.org/fhir/R4/xml.html) differs from FHIR JSON in a few fixed ways, all decided here:
- element order is the specification order (the JSON key order carries no meaning);
- ``id`` of a datatype or backbone element and ``Extension.url`` are XML attributes; ``Resource.id`` is an
  element;
- primitives carry their value in a ``value`` attribute and their JSON ``_name`` sibling (id, extension)
  inline;
- resources inside resources (contained, Bundle.entry.resource, Parameters.parameter.resource) sit in an
  element named for their type; Narrative.div is an XHTML element.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache

from adapter.errors import FhirValidationError
from adapter.schema.definitions import ANY_RESOURCE, Element, elements, is_resource_type

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
DIV_TAG = f"{{{XHTML_NS}}}div"
EXTENSION_TAG = f"{{{FHIR_NS}}}extension"

# Abstract bases: never the name of an instance.
_ABSTRACT = frozenset({"Resource", "DomainResource"})


class Kind(enum.IntEnum):
    """How an element's value is written; the primitive kinds come first (``kind <= DECIMAL``)."""

    STRING = 0  # every primitive whose JSON form is a string (code, dateTime, uri, ...)
    BOOLEAN = 1
    INTEGER = 2
    DECIMAL = 3
    XHTML = 4
    COMPLEX = 5
    RESOURCE = 6
    RESOURCE_TYPE = 7  # the JSON-only "resourceType" key


_PRIMITIVE_KINDS = {
    "boolean": Kind.BOOLEAN,
    "integer": Kind.INTEGER,
    "positiveInt": Kind.INTEGER,
    "unsignedInt": Kind.INTEGER,
    "decimal": Kind.DECIMAL,
    "xhtml": Kind.XHTML,
}


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: slots are deduplicated in sets on the hot path
class Slot:
    order: int
    name: str  # JSON name == XML local name
    tag: str  # qualified XML tag
    type: str
    kind: Kind
    is_list: bool
    is_attribute: bool
    ext_key: str  # the JSON key of a primitive's id/extension sibling: "_name"


@dataclass(frozen=True, slots=True, eq=False)
class Layout:
    type: str
    is_resource: bool
    by_key: Mapping[str, Slot]  # JSON key -> slot ("name" and "_name" share one slot)
    attributes: Mapping[str, Slot]  # XML attribute name -> slot
    children: Mapping[str, Slot]  # qualified XML tag -> slot


def _r4_elements(type_name: str) -> tuple[Element, ...]:
    """R4B's elements plus what R4 has and R4B dropped: Meta in the open-type choices
    (Extension.value[x], ElementDefinition.fixed[x] ...; see shared/reference/performance.md §1). The R4B-only
    choices stay: rejecting them is the validator's job (adapter.fhir.R4B_ONLY_EXTENSION_VALUES)."""
    result = list(elements(type_name))
    names = {e.name for e in result}
    for e in elements(type_name):
        if e.choice and e.name == f"{e.choice}CodeableReference" and f"{e.choice}Meta" not in names:
            result.append(replace(e, name=f"{e.choice}Meta", type="Meta", is_primitive=False))
    return tuple(result)


def _kind(e: Element) -> Kind:
    if e.type == ANY_RESOURCE:
        return Kind.RESOURCE
    if not e.is_primitive:
        return Kind.COMPLEX
    return _PRIMITIVE_KINDS.get(e.type, Kind.STRING)


@cache
def layout(type_name: str) -> Layout:
    """The XML layout of a resource, datatype or backbone type (e.g. "ObservationComponent").

    Raises FhirValidationError for a name that is not a FHIR type. Only valid names are cached (the cache
    does not keep exceptions), so hostile input cannot grow it.
    """
    is_resource = type_name not in _ABSTRACT and is_resource_type(type_name)
    by_key: dict[str, Slot] = {}
    attributes: dict[str, Slot] = {}
    children: dict[str, Slot] = {}
    if is_resource:
        by_key["resourceType"] = Slot(-1, "resourceType", "", "", Kind.RESOURCE_TYPE, False, False, "")
    for order, e in enumerate(_r4_elements(type_name)):
        is_attribute = (e.name == "id" and not is_resource) or (type_name == "Extension" and e.name == "url")
        kind = _kind(e)
        tag = DIV_TAG if kind is Kind.XHTML else f"{{{FHIR_NS}}}{e.name}"
        slot = Slot(order, e.name, tag, e.type, kind, e.is_list, is_attribute, f"_{e.name}")
        by_key[e.name] = slot
        if is_attribute:
            attributes[e.name] = slot
            continue
        children[tag] = slot
        if kind <= Kind.DECIMAL:
            by_key[slot.ext_key] = slot
    return Layout(type_name, is_resource, by_key, attributes, children)


def resource_layout(type_name: str) -> Layout | None:
    """The layout of a concrete resource type, or None if the name is not one."""
    try:
        found = layout(type_name)
    except FhirValidationError:
        return None
    return found if found.is_resource else None
