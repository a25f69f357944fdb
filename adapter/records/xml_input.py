"""Read the clinic's XML record export into the same JSON-shaped objects a JSON export gives.

The XML form mirrors the JSON one (docs/records.md): a record element is named for its `kind`, its children
are its fields, a list is its element repeated, a nested object is a nested element, and the assessment's
answers are ``<answers><answer item="9">1</answer></answers>``. The document is first checked against
records.xsd, so structural problems come back with line numbers; what is left is turning element text into
the JSON value the model's field annotation asks for, so that the loader's strict validation treats both
forms alike.
"""

from __future__ import annotations

import enum
import re
import threading
import types
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Annotated, Any, Union, get_args, get_origin

from lxml import etree
from pydantic import BaseModel

from adapter.errors import InputError, Problem
from adapter.fhirxml.secure import parse_untrusted
from adapter.records import RECORD_KINDS

NAMESPACE = "urn:bh-fhir-adapter:records:1"
ROOT = "records"
SCHEMA_FILE = "records.xsd"

_INTEGER = re.compile(r"^[+-]?[0-9]+$")
# What orjson (the loader re-encodes every item) can write; the schema's xs:long keeps values inside it.
_INT64 = range(-(2**63), 2**63)


class _Value(enum.Enum):
    TEXT = "text"  # str, Literal, date, datetime: the JSON value is the element's text
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DECIMAL = "decimal"  # kept as the written text: Decimal("2.50"), not a float
    OBJECT = "object"  # a nested record part
    ANSWERS = "answers"  # the assessment's item -> answer mapping


@dataclass(frozen=True, slots=True)
class _Field:
    value: _Value
    repeated: bool = False
    model: type[BaseModel] | None = None


@cache
def _fields(model: type[BaseModel]) -> dict[str, _Field]:
    """How each field of `model` is written in XML, read from its annotations."""
    return {name: _field(info.annotation) for name, info in model.model_fields.items()}


def _field(annotation: Any) -> _Field:
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is tuple or origin is list:
        inner = _field(get_args(annotation)[0])
        return _Field(inner.value, repeated=True, model=inner.model)
    if origin is dict:  # the one mapping field: Assessment.answers
        return _Field(_Value.ANSWERS)
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return _Field(_Value.OBJECT, model=annotation)
        if issubclass(annotation, bool):  # before int: bool is an int
            return _Field(_Value.BOOLEAN)
        if issubclass(annotation, int):
            return _Field(_Value.INTEGER)
        if issubclass(annotation, Decimal):
            return _Field(_Value.DECIMAL)
    if get_origin(annotation) in (Union, types.UnionType):
        # A union other than `X | None` would need a rule of its own; no field has one today.
        raise TypeError(f"no XML form for the union {annotation!r}")
    return _Field(_Value.TEXT)


def _unwrap(annotation: Any) -> Any:
    """Drop Annotated metadata and `| None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


_local = threading.local()


@cache
def _schema_document() -> etree._Element:
    data = resources.files("adapter.records").joinpath(SCHEMA_FILE).read_bytes()
    return parse_untrusted(data, source=SCHEMA_FILE)


def schema() -> etree.XMLSchema:
    """The compiled records.xsd, one per thread: a validator keeps the error log of its last run on itself."""
    compiled: etree.XMLSchema | None = getattr(_local, "schema", None)
    if compiled is None:
        compiled = etree.XMLSchema(_schema_document())
        _local.schema = compiled
    return compiled


def xml_to_items(data: bytes, *, source: str) -> list[dict[str, Any]]:
    """The records of an XML export as JSON-shaped objects, ready for the loader's strict validation.

    Raises UnsafeInputError (DTD, entities) or InputError (malformed XML; schema violations, with lines).
    """
    try:
        root = parse_untrusted(data, source=source, schema=schema())
    except InputError as exc:
        _drop_namespace(exc)
        raise
    elements = list(root) if etree.QName(root).localname == ROOT else [root]
    return [_record(element, source) for element in elements]


def _record(element: etree._Element, source: str) -> dict[str, Any]:
    kind = etree.QName(element).localname
    model = RECORD_KINDS.get(kind)
    if model is None or not issubclass(model, BaseModel):  # guards a schema that drifted from the models
        message = f"unknown record kind {kind!r}"
        raise InputError(message, [_problem(element, source, message)])
    return {"kind": kind, **_object(element, model, source)}


def _object(element: etree._Element, model: type[BaseModel], source: str) -> dict[str, Any]:
    fields = _fields(model)
    result: dict[str, Any] = {}
    for child in element:
        name = etree.QName(child).localname
        # A name the model does not know stays as text so that validation reports it as an extra field.
        spec = fields.get(name, _Field(_Value.TEXT))
        value = _value(child, spec, source)
        if spec.repeated:
            result.setdefault(name, []).append(value)
        else:
            result[name] = value
    return result


def _value(element: etree._Element, spec: _Field, source: str) -> Any:
    if spec.model is not None:
        return _object(element, spec.model, source)
    if spec.value is _Value.ANSWERS:
        return _answers(element, source)
    text = (element.text or "").strip()
    if spec.value is _Value.INTEGER:
        return _integer(text)
    if spec.value is _Value.BOOLEAN:
        return {"true": True, "false": False}.get(text, text)
    return text  # TEXT, and DECIMAL as written: strict validation reads a decimal string exactly


def _integer(text: str) -> int | str:
    # Anything but a 64-bit integer stays text, so that validation reports "should be a valid integer".
    if _INTEGER.match(text) and int(text) in _INT64:
        return int(text)
    return text


def _answers(element: etree._Element, source: str) -> dict[str, int | bool | str]:
    answers: dict[str, int | bool | str] = {}
    for answer in element:
        item = answer.get("item", "")
        if item in answers:  # the schema's xs:unique catches this first
            raise InputError("duplicate answer", [_problem(answer, source, f"two answers for item {item!r}")])
        text = (answer.text or "").strip()
        answers[item] = {"true": True, "false": False}.get(text, _integer(text))
    return answers


def _problem(element: etree._Element, source: str, message: str) -> Problem:
    return Problem(f"line {element.sourceline}: {message}", location=source)


def _drop_namespace(exc: InputError) -> None:
    """libxml2 names elements {urn:...}name; the namespace is the same everywhere, so say just the name."""
    prefix = f"{{{NAMESPACE}}}"
    exc.problems[:] = [
        Problem(p.message.replace(prefix, ""), location=p.location, record_id=p.record_id, field=p.field)
        for p in exc.problems
    ]
    exc.message = exc.message.replace(prefix, "")
