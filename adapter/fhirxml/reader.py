"""FHIR R4 XML -> canonical FHIR JSON dicts, type-driven by the element definitions.

Strict, because the input is untrusted: parsed by :func:`adapter.fhirxml.secure.parse_untrusted`; an
unknown element or attribute, text where FHIR has none, or elements out of specification order (FHIR XML
requires the order) raise InputError naming the line and the path. Value checks beyond the JSON type (code
systems, dateTime formats, cardinality) are the validator's job, not the reader's.

Numbers follow :func:`adapter.fhir.loads`: an integral decimal is an int, any other a Decimal built from the
text (``14.50`` stays ``Decimal("14.50")``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from lxml import etree

from adapter.errors import InputError, Problem
from adapter.fhirxml.layout import FHIR_NS, XHTML_NS, Kind, Layout, Slot, layout, resource_layout
from adapter.fhirxml.secure import parse_untrusted

_FHIR_PREFIX = f"{{{FHIR_NS}}}"
# http://hl7.org/fhir/R4/datatypes.html: integer [0]|[-+]?[1-9][0-9]*, decimal as below.
_INTEGER = re.compile(r"0|[-+]?[1-9][0-9]*")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGRAL = re.compile(r"0|-?[1-9][0-9]*")
_XHTML_NSMAP: Any = {None: XHTML_NS}  # Any: lxml-stubs do not allow the None (default) prefix


class _PathError(Exception):
    """An internal failure at ``line``; each level of the recursion adds its path segment on the way out."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.segments: list[str] = []

    def path(self) -> str:
        return "".join(reversed(self.segments)).lstrip(".")


def from_xml(data: bytes, *, source: str | None = None) -> dict[str, Any]:
    """Read one FHIR XML resource (any resource type, Bundles included) into its canonical JSON dict."""
    root = parse_untrusted(data, source=source)
    try:
        return _read_resource(root)
    except RecursionError:  # libxml2 caps depth at 256; this guards a deep caller stack
        raise InputError("FHIR XML nested too deeply", [Problem("nested too deeply", location=source)]) from None
    except _PathError as fail:
        path = fail.path()
        message = f"line {fail.line}: {fail.message}" if fail.line else fail.message
        problem = Problem(message, location=source, field=path or None)
        raise InputError(f"invalid FHIR XML: {problem.line()}", [problem]) from None


def _line(el: etree._Element) -> int | None:
    line: int | None = el.sourceline  # type: ignore[assignment]  # lxml-stubs type it as "..."
    return line


def _local(tag: Any) -> str:
    """A tag for messages: the local name of FHIR elements, Clark notation for anything else."""
    text = str(tag)
    return text[len(_FHIR_PREFIX) :] if text.startswith(_FHIR_PREFIX) else text


def _read_resource(el: etree._Element) -> dict[str, Any]:
    tag = el.tag
    lay = None
    if isinstance(tag, str) and tag.startswith(_FHIR_PREFIX):
        lay = resource_layout(tag[len(_FHIR_PREFIX) :])
    if lay is None:
        raise _PathError(f"<{_local(tag)}> is not a FHIR resource", _line(el))
    if el.attrib:
        raise _PathError(f"unknown attribute {next(iter(el.attrib))!r} on a resource", _line(el))
    out: dict[str, Any] = {"resourceType": lay.type}
    _read_children(el, lay, out)
    return out


def _read_object(el: etree._Element, lay: Layout) -> dict[str, Any]:
    out: dict[str, Any] = {}
    attributes = lay.attributes
    for name, value in el.attrib.items():
        slot = attributes.get(str(name))
        if slot is None:
            raise _PathError(f"unknown attribute {_local(name)!r} on {lay.type}", _line(el))
        if not value:
            raise _PathError(f"empty attribute {slot.name!r}", _line(el))
        out[slot.name] = str(value)
    _read_children(el, lay, out)
    return out


def _check_text(text: str | None, el: etree._Element) -> None:
    if text and not text.isspace():
        raise _PathError(f"text is not allowed in <{_local(el.tag)}>", _line(el))


def _read_children(el: etree._Element, lay: Layout, out: dict[str, Any]) -> None:
    """Add the child elements of ``el`` to ``out`` in order, checking specification order as it goes."""
    _check_text(el.text, el)
    children = lay.children
    last: Slot | None = None
    count = 0  # repetitions of ``last`` so far
    values: list[Any] = []  # of a repeating primitive: values and "_name" objects, None where absent
    exts: list[Any] = []
    for child in el:
        slot = children.get(child.tag)  # a str: the parser drops comments and PIs
        if slot is None:
            raise _PathError(f"unknown element <{_local(child.tag)}> in {lay.type}", _line(child))
        _check_text(child.tail, el)
        if slot is last:
            if not slot.is_list:
                raise _PathError(f"<{slot.name}> repeats but is not a list", _line(child))
            count += 1
        else:
            if last is not None:
                if slot.order < last.order:
                    raise _PathError(f"<{slot.name}> is out of order (after <{last.name}>)", _line(child))
                _finish_primitive_list(last, values, exts, out)
            last, count = slot, 0
        try:
            _read_slot(child, slot, out, values, exts)
        except _PathError as fail:
            fail.segments.append(f".{slot.name}[{count}]" if slot.is_list else f".{slot.name}")
            raise
    if last is not None:
        _finish_primitive_list(last, values, exts, out)


def _read_slot(child: etree._Element, slot: Slot, out: dict[str, Any], values: list[Any], exts: list[Any]) -> None:
    kind = slot.kind
    if kind is Kind.COMPLEX:
        value: Any = _read_object(child, layout(slot.type))
    elif kind <= Kind.DECIMAL:
        value, ext = _read_primitive(child, kind)
        if slot.is_list:
            values.append(value)
            exts.append(ext)
            return
        if value is not None:
            out[slot.name] = value
        if ext is not None:
            out[slot.ext_key] = ext
        return
    elif kind is Kind.RESOURCE:
        value = _read_wrapped_resource(child)
    else:  # Kind.XHTML
        value = _div_text(child)
    if slot.is_list:
        out.setdefault(slot.name, []).append(value)
    else:
        out[slot.name] = value


def _finish_primitive_list(slot: Slot, values: list[Any], exts: list[Any], out: dict[str, Any]) -> None:
    """A repeating primitive in JSON: its values, and a parallel "_name" array if any item has extensions."""
    if not values:
        return
    if any(v is not None for v in values):
        out[slot.name] = values.copy()
    if any(e is not None for e in exts):
        out[slot.ext_key] = exts.copy()
    values.clear()
    exts.clear()


def _read_primitive(el: etree._Element, kind: Kind) -> tuple[Any, dict[str, Any] | None]:
    raw: str | None = None
    ext: dict[str, Any] = {}
    for name, text in el.attrib.items():
        if name == "value":
            raw = str(text)
        elif name == "id":
            ext["id"] = str(text)
        else:
            raise _PathError(f"unknown attribute {_local(name)!r} on a primitive", _line(el))
    _read_children(el, layout("Element"), ext)  # extension children only
    if raw is None:
        if not ext:
            raise _PathError("a primitive needs a value attribute or extensions", _line(el))
        return None, ext
    return _value(kind, raw, el), (ext or None)


def _value(kind: Kind, raw: str, el: etree._Element) -> Any:
    if not raw:
        raise _PathError("empty value attribute", _line(el))
    if kind is Kind.STRING:
        return raw
    if kind is Kind.BOOLEAN:
        if raw == "true":
            return True
        if raw == "false":
            return False
        raise _PathError("a boolean must be true or false", _line(el))
    if kind is Kind.INTEGER:
        if _INTEGER.fullmatch(raw):
            return int(raw)
        raise _PathError("not an integer", _line(el))
    if _INTEGRAL.fullmatch(raw):
        return int(raw)
    if _DECIMAL.fullmatch(raw):
        return Decimal(raw)
    raise _PathError("not a decimal", _line(el))


def _read_wrapped_resource(el: etree._Element) -> dict[str, Any]:
    """contained / Bundle.entry.resource / Parameters.parameter.resource: one resource element inside."""
    if el.attrib:
        raise _PathError(f"unknown attribute {_local(next(iter(el.attrib)))!r}", _line(el))
    _check_text(el.text, el)
    if len(el) != 1:
        raise _PathError("must hold exactly one resource", _line(el))
    inner = el[0]
    _check_text(inner.tail, el)
    return _read_resource(inner)


def _div_text(div: etree._Element) -> str:
    """The narrative as the JSON string: the div serialised with XHTML as its default namespace."""
    if div.nsmap == {None: XHTML_NS} and div.prefix is None:
        return etree.tostring(div, encoding="unicode", with_tail=False)
    return etree.tostring(_rebuild(div, None), encoding="unicode", with_tail=False)


def _rebuild(el: etree._Element, parent: etree._Element | None) -> etree._Element:
    """Copy a div whose XHTML namespace came with a prefix or next to foreign declarations (in scope from the
    FHIR document) so that it serialises as ``<div xmlns="http://www.w3.org/1999/xhtml">``."""
    tag = el.tag
    attrib: dict[str, str] = {str(k): str(v) for k, v in el.attrib.items()}
    copy = etree.Element(tag, attrib, nsmap=_XHTML_NSMAP) if parent is None else etree.SubElement(parent, tag, attrib)
    copy.text = el.text
    copy.tail = el.tail if parent is not None else None
    for child in el:
        _rebuild(child, copy)
    return copy
