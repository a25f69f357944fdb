"""The one module that imports fhir.resources, plus the small helpers every mapping uses.

fhir.resources 8.x ships R5 (default), R4B and STU3 models but no R4 4.0.1. R4 and R4B differ in a handful of
elements (see ``R4_DELTAS``); we validate with the R4B models and add the R4 rules they miss. fhir.resources is
the *reference* validator (tests, differential checks, ``--strict``); the hot path uses the compiled validator in
``adapter.schema``, whose definitions are read through :func:`model_class` so that this stays the only import.

Resources travel as plain dicts in FHIR's canonical JSON form: timestamps are emitted as text by the mappings,
decimals are :class:`decimal.Decimal` and serialized verbatim (fhir.resources would turn ``14.50`` into ``14.5``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from pydantic import ValidationError

from adapter.errors import FhirValidationError, Problem

FHIR_VERSION = "4.0.1"
Resource = dict[str, Any]

# Namespace for deterministic resource ids: uuid5(ID_NAMESPACE, "<resourceType>|<business key parts>").
ID_NAMESPACE = uuid.UUID("6f1d2f3e-8a4b-5c6d-9e0f-b1a2c3d4e5f6")

# Where R4 (4.0.1) is stricter than R4B (4.3.0), established element by element (shared/reference/performance.md §1).
R4B_ONLY_EXTENSION_VALUES = frozenset({"valueCodeableReference", "valueRatioRange"})
R4_OBSERVATION_SUBJECT_TARGETS = frozenset({"Patient", "Group", "Device", "Location"})


@cache
def model_class(resource_type: str) -> Any:
    """The fhir.resources R4B model class for a resource or datatype name (e.g. "Observation", "Quantity")."""
    from fhir.resources import R4B

    try:
        return R4B.get_fhir_model_class(resource_type)
    except (KeyError, ValueError) as exc:
        raise FhirValidationError(f"unknown FHIR type {resource_type!r}") from exc


def deterministic_id(resource_type: str, *key: str, namespace: uuid.UUID = ID_NAMESPACE) -> str:
    """A stable id from business identifiers, so re-mapping gives the same resource and re-sending is a PUT.

    Equal to ``str(uuid.uuid5(namespace, "Type|key|..."))`` (tested), computed without building UUID objects:
    ids are minted for every resource and every reference on the hot path.
    """
    return uuid5_text(namespace.bytes, "|".join((resource_type, *key)))


# RFC 4122 variant bits over the first hex digit of the clock_seq field: 10xx.
_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


def uuid5_text(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))``, without building UUID objects. Not memoized: nearly every
    id is computed once per mapping (the repeated ones, directory references, are memoized by MappingContext),
    and a bounded cache that keeps missing costs more than the hash."""
    h = hashlib.sha1(namespace + name.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def reference(resource_type: str, resource_id: str, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        ref["display"] = display
    return ref


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        cc["text"] = text
    return cc


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # FHIR decimals keep their precision: "14.50" stays 14.50 on the wire.
        return orjson.Fragment(str(obj))
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(resource: Mapping[str, Any], *, pretty: bool = False, newline: bool = False) -> bytes:
    """Canonical FHIR JSON bytes (orjson; Decimals verbatim; key order as built)."""
    option = (orjson.OPT_INDENT_2 if pretty else 0) | (orjson.OPT_APPEND_NEWLINE if newline else 0)
    return orjson.dumps(resource, default=_default, option=option)


def loads(data: bytes | str) -> Any:
    """Parse FHIR JSON keeping decimals exact (fractional numbers become Decimal)."""
    import json

    return json.loads(data, parse_float=Decimal)


def _pydantic_problems(resource_type: str, exc: ValidationError) -> list[Problem]:
    return [
        Problem(
            message=err["msg"],
            location=resource_type,
            field=".".join(str(p) for p in err["loc"]) or None,
        )
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _r4_delta_problems(resource: Mapping[str, Any]) -> list[Problem]:
    """Checks for what R4B accepts but R4 forbids."""
    problems: list[Problem] = []
    rtype = str(resource.get("resourceType"))

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in R4B_ONLY_EXTENSION_VALUES and path.split(".")[-1].startswith(
                    ("extension", "modifierExtension")
                ):
                    problems.append(Problem(f"{key} is not in FHIR R4", location=rtype, field=f"{path}.{key}"))
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]" if not path.endswith("]") else path)

    walk(resource, rtype)
    if rtype == "Observation":
        subject = resource.get("subject")
        reference = str(subject.get("reference", "")) if isinstance(subject, Mapping) else ""
        # the type is the segment before the id: "Patient/1", "https://host/fhir/Patient/1[/_history/2]"
        segments = reference.split("/_history/")[0].split("/")
        target = segments[-2] if len(segments) >= 2 else ""
        if target and target not in R4_OBSERVATION_SUBJECT_TARGETS:
            problems.append(
                Problem(f"R4 Observation.subject may not reference {target}", location=rtype, field="subject")
            )
    return problems


def reference_validate(resource: Mapping[str, Any]) -> None:
    """Validate one resource with fhir.resources (R4B) plus the R4 deltas; raise FhirValidationError."""
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise FhirValidationError("resource has no resourceType", [Problem("missing resourceType")])
    try:
        model_class(rtype).model_validate(resource)
    except ValidationError as exc:
        problems = _pydantic_problems(rtype, exc)
    else:
        problems = []
    problems += _r4_delta_problems(resource)
    if problems:
        raise FhirValidationError(f"{rtype} is not valid FHIR R4", problems)


def reference_validate_all(resources: Iterable[Mapping[str, Any]]) -> None:
    for resource in resources:
        reference_validate(resource)
