"""FHIR R4 primitive types as pydantic-core schemas that run in Rust.

Regexes follow the R4 datatype page (http://hl7.org/fhir/R4/datatypes.html#primitive), anchored and tightened
where the spec's own regex is looser than its prose:

- every primitive is non-empty (R4 JSON: "empty strings are not allowed"), and string/markdown need at least one
  non-whitespace character (the spec says they SHOULD);
- date/dateTime/instant reject impossible calendar dates (Feb 30, Feb 29 of a non-leap year) in the regex itself,
  so no Python date parsing runs on the hot path;
- decimal is a JSON number (int, float or Decimal, finite): never a string, never a bool;
- integer types are strict ints: no bool, no float, no numeric string;
- uuid follows fhir.resources, which only accepts version-4 UUIDs (``urn:uuid:`` + lowercase hex).

xhtml is the one primitive checked in Python: the string must start with a ``<div`` carrying the XHTML namespace
(regex, in Rust) and must then parse, with the adapter's hardened XML parser, to exactly that div element.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from pydantic_core import PydanticCustomError, core_schema

from adapter.errors import InputError

XHTML_NS = "http://www.w3.org/1999/xhtml"

# --- dates and times -------------------------------------------------------------------------------------
_YEAR = r"(?:[0-9](?:[0-9](?:[0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"  # 0001..9999, as the R4 regex
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH = r"(?:0[1-9]|1[0-2])"
_MONTH_DAY = (
    r"(?:" + _MONTH + r"-(?:0[1-9]|1[0-9]|2[0-8])"  # every month has 1..28
    r"|(?:0[13-9]|1[0-2])-(?:29|30)"  # all but February have 29 and 30
    r"|(?:0[13578]|1[02])-31)"  # the long months have 31
)
_FULL_DATE = rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"  # R4 allows leap second 60
_TZ = r"(?:Z|[+\-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"

DATE = rf"^(?:{_FULL_DATE}|{_YEAR}(?:-{_MONTH})?)$"
DATE_TIME = rf"^(?:{_FULL_DATE}(?:T{_TIME}{_TZ})?|{_YEAR}(?:-{_MONTH})?)$"
INSTANT = rf"^{_FULL_DATE}T{_TIME}{_TZ}$"
TIME = rf"^{_TIME}$"

# --- identifiers and text ----------------------------------------------------------------------------------
ID = r"[A-Za-z0-9\-.]{1,64}"
_B64 = r"[A-Za-z0-9+/]"
_B64_TAIL = rf"(?:{_B64}{{2}}==|{_B64}{{3}}=)"
BASE64 = rf"^\s*(?:(?:{_B64}{{4}}\s*)+{_B64_TAIL}?|{_B64_TAIL})\s*$"
UUID = r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_V4 = r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$"
OID = r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+"
# fhir.resources accepts a url that is either absolute (pydantic AnyUrl) or a relative path whose first
# segment is a plain name; we accept only the intersection of that with "no whitespace".
_RELATIVE_URL = r"^/?[A-Za-z0-9\-.#]+(?:[/?]\S*)?$"
_XHTML_START = r'^<div\s(?:[^>]*\s)?xmlns\s*=\s*["\']http://www\.w3\.org/1999/xhtml["\'][^>]*>'
# A regular subset of well-formed XHTML narrative: the div, then text and attribute-free p/ul/ol/li with one level
# of inline markup. Every match parses as XHTML (balanced by construction; no '<' or '>' in text, only XML's
# predefined entities and the apostrophe html.escape() writes, no XML-forbidden characters), so the fast tier
# can accept it without parsing; anything richer is parsed by the full tier.
_XML_CHAR = r"[^<>&\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
_XML_ENTITY = r"&(?:amp|lt|gt|quot|apos|#x27|#39);"
_TEXT = rf"(?:{_XML_CHAR}|{_XML_ENTITY})*"
_INLINE = (
    rf"(?:{_XML_CHAR}|{_XML_ENTITY}|<br/>|"
    + "|".join(rf"<{tag}>{_TEXT}</{tag}>" for tag in ("b", "i", "em", "strong", "code", "span"))
    + ")*"
)
_BLOCK = rf"<p>{_INLINE}</p>|" + "|".join(rf"<{tag}>(?:\s*<li>{_INLINE}</li>)*\s*</{tag}>" for tag in ("ul", "ol"))
SIMPLE_XHTML = rf'^<div xmlns="http://www\.w3\.org/1999/xhtml">(?:{_BLOCK}|{_INLINE})*</div>$'

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _text(pattern: str) -> core_schema.CoreSchema:
    """A non-empty string matching ``pattern`` (every pattern here needs at least one character)."""
    return core_schema.str_schema(strict=True, pattern=pattern)


def _int(minimum: int) -> core_schema.CoreSchema:
    return core_schema.int_schema(strict=True, ge=minimum, le=INT32_MAX)


def _decimal() -> core_schema.CoreSchema:
    return core_schema.custom_error_schema(
        core_schema.union_schema(
            [
                core_schema.decimal_schema(strict=True, allow_inf_nan=False),
                core_schema.float_schema(strict=True, allow_inf_nan=False),  # strict float also takes int
            ],
            mode="left_to_right",
        ),
        custom_error_type="fhir_decimal",
        custom_error_message="a FHIR decimal is a finite JSON number (int, float or Decimal), not a string or bool",
    )


def _url() -> core_schema.CoreSchema:
    return core_schema.custom_error_schema(
        core_schema.chain_schema(
            [
                _text(r"^\S+$"),
                core_schema.union_schema(
                    [core_schema.url_schema(), core_schema.str_schema(pattern=_RELATIVE_URL)],
                    mode="left_to_right",
                ),
            ]
        ),
        custom_error_type="fhir_url",
        custom_error_message="a FHIR url is an absolute URL or a relative path without whitespace",
    )


def _check_xhtml(value: str) -> str:
    from adapter.fhirxml.secure import parse_untrusted  # lxml is only needed where narratives appear

    try:
        root = parse_untrusted(value.encode("utf-8"), source="Narrative.div")
    except UnicodeEncodeError:
        raise PydanticCustomError("fhir_xhtml", "xhtml is not valid Unicode text") from None
    except InputError as exc:
        raise PydanticCustomError("fhir_xhtml", "xhtml does not parse: {reason}", {"reason": str(exc)}) from None
    if root.tag != f"{{{XHTML_NS}}}div":
        raise PydanticCustomError("fhir_xhtml", "xhtml root must be a div in the XHTML namespace")
    return value


def _xhtml() -> core_schema.CoreSchema:
    return core_schema.no_info_after_validator_function(_check_xhtml, _text(_XHTML_START))


def simple_xhtml() -> core_schema.CoreSchema:
    """xhtml restricted to SIMPLE_XHTML: checked by regex alone (the fast tier's narrative)."""
    return _text(SIMPLE_XHTML)


_FACTORIES: dict[str, Callable[[], core_schema.CoreSchema]] = {
    "boolean": lambda: core_schema.bool_schema(strict=True),
    "integer": lambda: _int(INT32_MIN),
    "unsignedInt": lambda: _int(0),
    "positiveInt": lambda: _int(1),
    "decimal": _decimal,
    "string": lambda: core_schema.str_schema(strict=True, min_length=1),  # the R4 regex [ \r\n\t\S]+
    "markdown": lambda: core_schema.str_schema(strict=True, min_length=1),
    "code": lambda: _text(r"^\S+(?: \S+)*$"),
    "id": lambda: _text(rf"^{ID}$"),
    "uri": lambda: _text(r"^\S+$"),
    "canonical": lambda: _text(r"^\S+$"),
    "url": _url,
    "oid": lambda: _text(rf"^{OID}$"),
    "uuid": lambda: _text(UUID_V4),
    "base64Binary": lambda: _text(BASE64),
    "date": lambda: _text(DATE),
    "dateTime": lambda: _text(DATE_TIME),
    "instant": lambda: _text(INSTANT),
    "time": lambda: _text(TIME),
    "xhtml": _xhtml,
}

# Names the R4B model metadata uses for some primitives (see adapter.schema.definitions).
_ALIASES = {"uuidVersion": "uuid"}


def primitive_names() -> frozenset[str]:
    return frozenset(_FACTORIES) | frozenset(_ALIASES)


@cache
def primitive(name: str) -> core_schema.CoreSchema:
    """The schema for one FHIR primitive type (e.g. "dateTime"); KeyError for a name that is not one."""
    return _FACTORIES[_ALIASES.get(name, name)]()


def code_in(codes: tuple[str, ...]) -> core_schema.CoreSchema:
    """A code bound (required strength) to a value set: one of ``codes`` exactly."""
    return core_schema.literal_schema(list(codes))


def reference_pattern(targets: frozenset[str] | None) -> str:
    """Reference.reference for the given target types (None or "Resource" = any type).

    Accepts ``Type/id`` (optionally ``/_history/vid``), an absolute URL ending in that, ``urn:uuid:``,
    ``urn:oid:`` (Bundle-local references) and ``#id`` (contained; a bare ``#`` is the container).
    """
    any_type = not targets or "Resource" in targets
    types = "[A-Z][A-Za-z]+" if any_type else "(?:" + "|".join(sorted(targets or ())) + ")"
    tail = rf"{types}/{ID}(?:/_history/{ID})?"
    absolute = rf"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#]+(?:/[^\s/?#]+)*/{tail}"
    return rf"^(?:{tail}|{absolute}|{UUID}|{OID}|#(?:{ID})?)$"


def reference_string(targets: frozenset[str] | None) -> core_schema.CoreSchema:
    allowed = "any resource type" if not targets or "Resource" in targets else ", ".join(sorted(targets))
    return core_schema.custom_error_schema(
        _text(reference_pattern(targets)),
        custom_error_type="fhir_reference",
        custom_error_message=f"a reference to {allowed} (Type/id, absolute URL, urn:uuid:, urn:oid: or #id)",
    )
