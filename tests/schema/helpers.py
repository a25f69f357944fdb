"""Shared helpers for the compiled-validator tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapter.errors import FhirValidationError
from adapter.fhir import reference_validate


def reference_rejects(resource: Mapping[str, Any]) -> bool:
    """fhir.resources (R4B) + the R4 deltas. A crash inside it (it raises KeyError on an unknown contained
    resourceType) counts as a rejection: the resource would not get through."""
    try:
        reference_validate(resource)
    except FhirValidationError:
        return True
    except Exception:
        return True
    return False
