"""The one place that configures an XML parser for untrusted input.

Every XML document the adapter reads (FHIR XML, clinic record exports) goes through :func:`parse_untrusted`.
The policy is deny by default: no DTD of any kind (internal subset, external DTD, parameter entities), no
entity expansion, no network, no XInclude, libxml2's default size limits. A DOCTYPE is refused outright
rather than parsed harmlessly, because no input we accept needs one and refusing it leaves nothing to get
wrong (OWASP XML External Entity Prevention Cheat Sheet: "disable DTDs completely").
"""

from __future__ import annotations

import re
import threading
from typing import Any

from lxml import etree

from adapter.errors import InputError, Problem, UnsafeInputError

UNSAFE_MESSAGE = "DTDs and entities are not allowed"

# A DOCTYPE or entity declaration in the encodings libxml2 detects from the first bytes. Checked before
# parsing so a hostile DTD is never even read; the docinfo check after parsing catches any other encoding.
_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)


class _DenyResolver(etree.Resolver):
    """Hands libxml2 an empty document for every external resource it asks for.

    A second lock, not decoration: with lxml 6.1 / libxml2 2.14, one innocuous-looking option
    (``collect_ids=False``) makes libxml2 load the external DTD subset and external parameter entities even
    with load_dtd=False, file:// included (no_network stops only http). Should any option change reopen that
    door, the resolver answers every request with nothing. tests/fhirxml/test_fhirxml_secure.py pins both.
    """

    # lxml-stubs 0.5 get both signatures wrong; these are lxml's documented ones.
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        return self.resolve_string("", context)  # type: ignore[call-arg]


_local = threading.local()


def _parser() -> etree.XMLParser:
    """One hardened parser per thread: lxml's FAQ says parse in parallel with "the default parser (which is
    replicated for each thread) or create a parser for each thread yourself"."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,  # lxml >= 5 expands internal entities by default
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,  # keep libxml2's depth, text-size and amplification limits
            remove_comments=True,  # comments and PIs carry no data in any format we read
            remove_pis=True,
            # Not collect_ids=False: it makes libxml2 load external subsets (see _DenyResolver).
        )
        parser.resolvers.add(_DenyResolver())
        _local.parser = parser
    return parser


# libxml2: "Element 'id': [facet 'pattern'] The value 'X' is not accepted by ...", "Element 'birth_date': 'X' is
# not a valid value of ...". The value may itself hold quotes (Rivera's): it runs from the quote after the element
# (and facet) to the last quote before " is not".
_QUOTED_VALUE = re.compile(
    r"^(?P<head>.*?Element '[^']*': (?:\[facet '[^']*'\] )?)(?:The value )?'.*'"
    r"(?P<tail> is not (?:a valid value|accepted|an element of).*)$",
    re.DOTALL,
)


def _without_values(message: str) -> str:
    """libxml2 quotes the offending value; in clinic records that may be a name or an identifier (PHI)."""
    return _QUOTED_VALUE.sub(r"\g<head>The value\g<tail>", message)


def _unsafe(source: str | None) -> UnsafeInputError:
    return UnsafeInputError(UNSAFE_MESSAGE, [Problem(UNSAFE_MESSAGE, location=source)])


def parse_untrusted(data: bytes, *, source: str | None = None, schema: etree.XMLSchema | None = None) -> etree._Element:
    """Parse untrusted XML bytes into its root element, or raise.

    - A DOCTYPE or entity declaration -> :class:`UnsafeInputError` ("DTDs and entities are not allowed").
    - Malformed XML -> :class:`InputError` naming the line.
    - With ``schema``: each violation -> a :class:`Problem` with line and message, raised as one InputError.

    ``source`` (a file name or "request body") is used only to locate problems. XInclude is never processed.
    """
    if any(marker in data for marker in _MARKERS):
        raise _unsafe(source)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        message = f"line {line}: malformed XML: {exc.msg}"
        raise InputError(f"malformed XML at line {line}", [Problem(message, location=source)]) from None
    except ValueError as exc:  # e.g. empty input
        raise InputError("malformed XML", [Problem(f"malformed XML: {exc}", location=source)]) from None
    docinfo: Any = root.getroottree().docinfo  # Any: lxml-stubs lack DocInfo.doctype
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _unsafe(source)
    if schema is not None and not schema.validate(root):
        errors: Any = schema.error_log  # Any: lxml-stubs miss that an error log is iterable
        problems = [
            Problem(f"line {e.line}: {_without_values(e.message)}", location=source)
            for e in errors
            if e.level >= etree.ErrorLevels.ERROR  # libxml2 also logs warnings ("No precomputed value ...")
        ]
        raise InputError(f"XML does not match its schema: {problems[0].message}", problems)
    return root
