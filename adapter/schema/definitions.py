"""FHIR element definitions, read once from the fhir.resources R4B models.

A neutral description of every element of a type, in specification order, that the compiled validator
(``adapter.schema.validator``) and the XML writer/reader (``adapter.fhirxml``) share, so neither needs to
know how fhir.resources encodes its metadata. Read through :func:`adapter.fhir.model_class` (the one import).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from adapter.fhir import model_class

# Resources and datatypes whose content is "any resource": resolved by the instance's resourceType.
ANY_RESOURCE = "Resource"
BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a FHIR type, as it appears in JSON."""

    name: str  # JSON property name, e.g. "valueQuantity", "class" (never the Python alias)
    type: str  # FHIR type: primitive ("code", "dateTime", ...), complex ("Quantity"), backbone class
    #            name ("ObservationComponent"), or "Resource" for contained/entry.resource
    is_primitive: bool
    is_list: bool
    required: bool
    choice: str | None  # the [x] group, e.g. "value" for valueQuantity
    choice_required: bool
    enum: tuple[str, ...] | None  # codes listed in the model (may end with "+": the binding is extensible)
    targets: tuple[str, ...] | None  # allowed Reference targets (R4B; see adapter.fhir for R4 deltas)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip Optional/List wrappers: return (inner annotation, is_list)."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - fhir.resources uses typing.List
            is_list = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, is_list


# fhir_core marker classes whose names are not the FHIR primitive's name.
_MARKER_ALIASES = {"EncodedBytes": "base64Binary", "Base64Bytes": "base64Binary"}


def _primitive_name(marker_class_name: str) -> str:
    if marker_class_name in _MARKER_ALIASES:
        return _MARKER_ALIASES[marker_class_name]
    return marker_class_name[0].lower() + marker_class_name[1:]


def _type_of(annotation: Any) -> tuple[str, bool]:
    """(FHIR type name, is_primitive) for an unwrapped annotation."""
    if annotation is bool:
        return BOOLEAN, True
    if typing.get_origin(annotation) is typing.Annotated:
        metadata = typing.get_args(annotation)[1:]
        return _primitive_name(type(metadata[0]).__name__), True
    name = getattr(annotation, "__name__", str(annotation))
    if name.endswith("Type"):
        name = name[: -len("Type")]
    return name, False


@cache
def elements(type_name: str) -> tuple[Element, ...]:
    """The elements of a FHIR resource, datatype or backbone element, in specification order."""
    cls = model_class(type_name)
    order = cls.elements_sequence()
    fields = {(f.alias or n): f for n, f in cls.model_fields.items()}
    result = []
    for json_name in order:
        field = fields[json_name]
        extra = field.json_schema_extra or {}
        inner, is_list = _unwrap(field.annotation)
        fhir_type, primitive = _type_of(inner)
        enum = extra.get("enum_values")
        targets = extra.get("enum_reference_types")
        result.append(
            Element(
                name=json_name,
                type=fhir_type,
                is_primitive=primitive,
                is_list=is_list,
                required=bool(extra.get("element_required")) or field.is_required(),
                choice=extra.get("one_of_many"),
                choice_required=bool(extra.get("one_of_many_required")),
                enum=tuple(enum) if enum else None,
                targets=tuple(targets) if targets else None,
            )
        )
    return tuple(result)


@cache
def element_map(type_name: str) -> dict[str, Element]:
    return {e.name: e for e in elements(type_name)}


def is_resource_type(name: str) -> bool:
    """True for concrete resource types (those with a resourceType), false for datatypes and backbones."""
    try:
        cls = model_class(name)
    except Exception:
        return False
    return (
        bool(getattr(cls, "get_resource_type", None))
        and cls.get_resource_type() == name
        and any(base.__name__ == "Resource" for base in cls.__mro__)
    )
