"""FHIR responses: content negotiation (`_format`, then `Accept`) and OperationOutcome error bodies.

JSON (`application/fhir+json`) is the default; `application/fhir+xml` is written by adapter.fhirxml. A client
that asks for neither by `Accept` still gets JSON (FHIR servers may choose); an explicit `_format` that names
neither is refused (400), since the caller said exactly what it wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from fastapi import Request, Response

from adapter import fhir
from adapter.errors import AdapterError, UsageError
from adapter.fhirxml.writer import to_xml

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
Format = Literal["json", "xml"]

_FORMATS: dict[str, Format] = {
    "json": "json",
    FHIR_JSON: "json",
    "application/json": "json",
    "application/json+fhir": "json",  # DSTU2 name some clients still send
    "xml": "xml",
    FHIR_XML: "xml",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/xml+fhir": "xml",
}

# Issue types for errors the framework raises itself (routing, methods, body parsing).
_STATUS_ISSUES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


def _mime(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def negotiate(request: Request) -> Format:
    """The response format the request asks for: `_format` wins over `Accept` (FHIR RESTful API 3.1.0.1.10)."""
    explicit = request.query_params.get("_format")
    if explicit is not None:
        chosen = _FORMATS.get(_mime(explicit.replace(" ", "+")))  # '+' arrives as a space when not escaped
        if chosen is None:
            raise UsageError("_format must name JSON or XML (application/fhir+json, application/fhir+xml)")
        return chosen
    accepted = [_mime(part) for part in request.headers.get("accept", "").split(",")]
    for mime in accepted:
        if mime in _FORMATS:
            return _FORMATS[mime]
    return "json"


def render(resource: Mapping[str, Any], fmt: Format) -> tuple[bytes, str]:
    if fmt == "xml":
        return to_xml(resource), f"{FHIR_XML}; charset=utf-8"
    return fhir.dumps(resource), f"{FHIR_JSON}; charset=utf-8"


def fhir_response(
    resource: Mapping[str, Any],
    request: Request,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A FHIR resource in the format the request asked for."""
    body, media_type = render(resource, negotiate(request))
    return Response(body, status_code=status_code, media_type=media_type, headers=dict(headers or {}))


def outcome(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """An OperationOutcome for an error that is not an AdapterError (framework errors, status-only answers)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": code or _STATUS_ISSUES.get(status, "processing"), "diagnostics": message}
        ],
    }


def outcome_response(
    error: AdapterError | Mapping[str, Any],
    status: int | None = None,
    request: Request | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error as an OperationOutcome: an AdapterError (its own status unless `status` is given), or an
    OperationOutcome already built. XML when the request asked for it, else JSON."""
    body = error.operation_outcome() if isinstance(error, AdapterError) else error
    code = status or (error.http_status if isinstance(error, AdapterError) else 500)
    fmt: Format = "json"
    if request is not None:
        try:
            fmt = negotiate(request)
        except UsageError:
            fmt = "json"  # the error may be the bad `_format` itself
    content, media_type = render(body, fmt)
    return Response(content, status_code=code, media_type=media_type, headers=dict(headers or {}))
