"""Canonical FHIR JSON dicts -> FHIR R4 XML, written directly with lxml in one pass.

About 20x faster than fhir.resources' ``model_dump_xml`` and faithful to the JSON text: decimals are written
as given (``Decimal("14.50")`` -> ``14.50``, ``8`` -> ``8``), timestamps untouched, the narrative div as
lxml serialises it (pretty printing never indents inside it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from operator import attrgetter
from typing import Any

from lxml import etree

from adapter.errors import FhirValidationError, InputError, Problem, UnsafeInputError
from adapter.fhirxml.layout import DIV_TAG, FHIR_NS, Kind, Layout, Slot, layout, resource_layout
from adapter.fhirxml.secure import parse_untrusted

_ORDER = attrgetter("order")
_SubElement = etree.SubElement
_INDENT = "  "
_FHIR_NSMAP: Any = {None: FHIR_NS}  # Any: lxml-stubs do not allow the None (default) prefix


class _PathError(Exception):
    """An internal failure; each level of the recursion adds its path segment on the way out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def path(self) -> str:
        return "".join(reversed(self.segments)).lstrip(".")


def to_xml(resource: Mapping[str, Any], *, pretty: bool = False) -> bytes:
    """FHIR XML bytes (UTF-8, with an XML declaration) for one resource in canonical JSON form.

    Raises FhirValidationError naming the path of anything that has no XML form (unknown element, wrong value
    type, null without extension), UnsafeInputError for a narrative div that carries a DTD.
    """
    rtype = resource.get("resourceType")
    try:
        root = _resource_root(resource)
    except RecursionError:
        message = "nested too deeply"
        raise FhirValidationError(
            f"cannot write {rtype} as XML: {message}", [Problem(message, location=str(rtype))]
        ) from None
    except _PathError as fail:
        path = fail.path()
        problem = Problem(fail.message, location=str(rtype), field=path or None)
        raise FhirValidationError(f"cannot write {rtype} as XML: {problem.line()}", [problem]) from None
    if pretty:
        _indent(root, 0)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def _resource_root(resource: Any, parent: etree._Element | None = None) -> etree._Element:
    if not isinstance(resource, Mapping):
        raise _PathError("a resource must be an object")
    rtype = resource.get("resourceType")
    lay = resource_layout(rtype) if isinstance(rtype, str) else None
    if lay is None:
        raise _PathError("missing or unknown resourceType")
    tag = f"{{{FHIR_NS}}}{rtype}"
    el = etree.Element(tag, nsmap=_FHIR_NSMAP) if parent is None else _SubElement(parent, tag)
    _fill(el, resource, lay)
    return el


def _fill(el: etree._Element, obj: Mapping[str, Any], lay: Layout) -> None:
    """Write the members of one JSON object as attributes and children of ``el``, in specification order."""
    by_key = lay.by_key
    try:
        slots = sorted({by_key[key] for key in obj}, key=_ORDER)
    except KeyError:
        unknown = next(key for key in obj if key not in by_key)
        fail = _PathError(f"{unknown!r} is not an element of {lay.type}")
        raise fail from None
    for slot in slots:
        try:
            _write_slot(el, obj, slot)
        except _PathError as fail:
            fail.segments.append(f".{slot.name}")
            raise
        except ValueError as exc:  # lxml refuses strings with characters XML cannot carry
            error = _PathError(str(exc))
            error.segments.append(f".{slot.name}")
            raise error from None


def _write_slot(el: etree._Element, obj: Mapping[str, Any], slot: Slot) -> None:
    kind = slot.kind
    name = slot.name
    if kind is Kind.COMPLEX:
        sub = layout(slot.type)
        value = obj[name]
        if slot.is_list:
            for i, item in enumerate(_as_list(value)):
                try:
                    _fill(_SubElement(el, slot.tag), _as_object(item), sub)
                except _PathError as fail:
                    fail.segments.append(f"[{i}]")
                    raise
        else:
            _fill(_SubElement(el, slot.tag), _as_object(value), sub)
    elif kind <= Kind.DECIMAL:
        if slot.is_attribute:
            el.set(name, _text(kind, obj[name]))
        elif slot.is_list:
            _write_primitive_list(el, slot, obj.get(name), obj.get(slot.ext_key))
        else:
            _write_primitive(el, slot, obj.get(name), obj.get(slot.ext_key))
    elif kind is Kind.RESOURCE:
        value = obj[name]
        if slot.is_list:
            for i, item in enumerate(_as_list(value)):
                try:
                    _resource_root(item, _SubElement(el, slot.tag))
                except _PathError as fail:
                    fail.segments.append(f"[{i}]")
                    raise
        else:
            _resource_root(value, _SubElement(el, slot.tag))
    elif kind is Kind.XHTML:
        el.append(_div(obj[name]))
    # Kind.RESOURCE_TYPE: the element's tag already says it.


def _write_primitive(el: etree._Element, slot: Slot, value: Any, ext: Any) -> None:
    if ext is None:
        if value is None:
            raise _PathError("null without extensions")
        _SubElement(el, slot.tag, {"value": _text(slot.kind, value)})  # the common case: one call
        return
    child = _SubElement(el, slot.tag)
    # The JSON "_name" object is an Element: id attribute (set before value), extension children.
    _fill(child, _as_object(ext), layout("Element"))
    if value is not None:
        child.set("value", _text(slot.kind, value))


def _write_primitive_list(el: etree._Element, slot: Slot, values: Any, exts: Any) -> None:
    values = _as_list(values) if values is not None else None
    exts = _as_list(exts) if exts is not None else None
    if values is not None and exts is not None and len(values) != len(exts):
        raise _PathError(f"{slot.name} and _{slot.name} differ in length")
    count = len(values) if values is not None else len(exts or ())
    for i in range(count):
        try:
            _write_primitive(el, slot, values[i] if values is not None else None, exts[i] if exts is not None else None)
        except _PathError as fail:
            fail.segments.append(f"[{i}]")
            raise


def _text(kind: Kind, value: Any) -> str:
    """The XML text of a primitive value; FHIR's JSON types are strict, so is this."""
    if kind is Kind.STRING:
        if isinstance(value, str) and value:
            return value
        raise _PathError("expected a non-empty string" if isinstance(value, str) else _got("a string", value))
    if kind is Kind.BOOLEAN:
        if value is True:
            return "true"
        if value is False:
            return "false"
        raise _PathError(_got("a boolean", value))
    if kind is Kind.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _PathError(_got("an integer", value))
    # Kind.DECIMAL: verbatim, so the precision the sender stated survives.
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise _PathError(_got("a finite decimal", value))


def _got(expected: str, value: Any) -> str:
    return f"expected {expected}, got {type(value).__name__}"  # the type only: values may be PHI


def _as_list(value: Any) -> list[Any]:
    if type(value) is list or isinstance(value, list):
        return value
    raise _PathError(_got("an array", value))


def _as_object(value: Any) -> Mapping[str, Any]:
    if type(value) is dict or isinstance(value, Mapping):  # the exact check first: the ABC check is slow
        return value
    raise _PathError(_got("an object", value))


def _div(value: Any) -> etree._Element:
    """Parse the narrative's XHTML with the hardened parser; the parsed element moves into the output tree."""
    if not isinstance(value, str):
        raise _PathError(_got("a string", value))
    try:
        div = parse_untrusted(value.encode("utf-8"), source="text.div")
    except UnsafeInputError:
        raise
    except InputError as exc:
        raise _PathError(f"not well-formed XHTML: {exc.lines()[0]}") from None
    if div.tag != DIV_TAG:
        raise _PathError('must be a <div xmlns="http://www.w3.org/1999/xhtml"> element')
    return div


def _indent(el: etree._Element, level: int) -> None:
    """Indent FHIR elements two spaces per level; the XHTML div is content, so only its tail is touched."""
    if not len(el) or el.tag == DIV_TAG:
        return
    inner = "\n" + _INDENT * (level + 1)
    el.text = inner
    child = el
    for child in el:
        _indent(child, level + 1)
        child.tail = inner
    child.tail = "\n" + _INDENT * level
