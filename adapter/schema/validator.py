"""The hot-path FHIR R4 validator: compiled pydantic-core schemas, at least as strict as fhir.resources.

    validate(resource)            raise FhirValidationError with one Problem per error
    errors(resource)              the Problems, or [] when valid
    is_valid(resource)            bool
    validator_for("Observation")  the compiled pydantic_core.SchemaValidator, for hot loops:

        check = validator_for("Observation").validate_python
        for record in records:
            resource = to_fhir(record, ctx)
            check(resource)        # raises pydantic_core.ValidationError; problems_from() converts it
            out.write(dumps(resource))

The validator only checks: its output is thrown away, and callers serialize their own dict. Problem.field is a
dotted path such as ``component[0].valueQuantity.value``; messages never quote the offending value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import ValidationError

from adapter.errors import FhirValidationError, Problem
from adapter.schema import compile as _compile

__all__ = ["datatype_is_valid", "errors", "is_valid", "problems_from", "validate", "validate_datatype", "validator_for"]


def validator_for(resource_type: str) -> _compile.CompiledValidator:
    """The compiled validator for ``resource_type`` (compiled on first use, then cached).

    Raises FhirValidationError for a resource type the adapter does not know (see resource_types.yaml).
    """
    try:
        return _compile.validator_for(resource_type)
    except KeyError:
        message = f"resourceType {resource_type!r} is not one this adapter validates"
        raise FhirValidationError(message, [Problem(message, location=resource_type, field="resourceType")]) from None


def _path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item[:1].isupper():
            continue  # the tagged union's resourceType tag (element names never start upper-case)
        else:
            parts.append(f".{item}" if parts else item)
    return "".join(parts)


def problems_from(exc: ValidationError, resource_type: str | None = None) -> list[Problem]:
    """One Problem per pydantic-core error, located by dotted FHIR path."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        path = _path(err["loc"])
        element = (err.get("ctx") or {}).get("element")
        if element:
            path = f"{path}.{element}" if path else str(element)
        problems.append(Problem(message=err["msg"], location=resource_type, field=path or None))
    return problems


def errors(resource: Mapping[str, Any]) -> list[Problem]:
    """Every problem found in ``resource`` ([] when it is valid FHIR R4 as far as this validator checks)."""
    if not isinstance(resource, Mapping):
        return [Problem("a resource must be a JSON object")]
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return [Problem("missing resourceType", field="resourceType")]
    try:
        validator = validator_for(resource_type)
    except FhirValidationError as exc:
        return exc.problems
    try:
        validator.validate_python(resource if isinstance(resource, dict) else dict(resource))
    except ValidationError as exc:
        return problems_from(exc, resource_type)
    return []


def validate(resource: Mapping[str, Any]) -> None:
    """Raise FhirValidationError (one Problem per error) unless ``resource`` is valid FHIR R4."""
    problems = errors(resource)
    if problems:
        resource_type = resource.get("resourceType") if isinstance(resource, Mapping) else None
        raise FhirValidationError(f"{resource_type or 'resource'} is not valid FHIR R4", problems)


def validate_datatype(type_name: str, value: Any) -> None:
    """Raise FhirValidationError unless `value` is a valid `type_name` (a datatype such as "Coding")."""
    try:
        _compile.datatype_validator(type_name)(value)
    except ValidationError as exc:
        raise FhirValidationError(f"{type_name} is not valid FHIR R4", problems_from(exc, type_name)) from None


def datatype_is_valid(type_name: str, value: Any) -> bool:
    """Is `value` a valid instance of the datatype `type_name` (e.g. "Meta"), as the full tier checks it inside
    a resource? For a part rebuilt after the whole resource was validated."""
    try:
        _compile.datatype_validator(type_name)(value)
    except ValidationError:
        return False
    return True


def is_valid(resource: Mapping[str, Any]) -> bool:
    return not errors(resource)
