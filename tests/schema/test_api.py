"""The public API: paths in problems, the two tiers, dispatch of nested resources."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_core import ValidationError

from adapter.errors import FhirValidationError
from adapter.schema.compile import _root
from adapter.schema.validator import errors, is_valid, problems_from, validate, validator_for

from .samples import bundle, care_plan, patient, phq9_total


def _component_observation() -> dict[str, Any]:
    resource = phq9_total()
    del resource["valueQuantity"]
    resource["component"] = [{"code": {"text": "item 1"}, "valueQuantity": {"value": "2"}}]
    return resource


def test_problem_paths_are_dotted_with_indices() -> None:
    problems = errors(_component_observation())
    assert [p.field for p in problems] == ["component[0].valueQuantity.value"]
    assert problems[0].location == "Observation"
    assert "2" not in problems[0].message  # messages never quote the offending value


def test_validate_raises_with_one_problem_per_error() -> None:
    resource = phq9_total()
    resource["status"] = "bogus"
    resource["issued"] = "yesterday"
    with pytest.raises(FhirValidationError) as info:
        validate(resource)
    assert {p.field for p in info.value.problems} == {"status", "issued"}
    assert info.value.operation_outcome()["issue"][0]["code"] == "structure"


def test_choice_errors_name_the_group() -> None:
    resource = phq9_total()
    resource["valueInteger"] = 14
    assert [p.field for p in errors(resource)] == ["value[x]"]


def test_nested_resource_paths_skip_the_union_tag() -> None:
    resource = bundle()
    resource["entry"][1]["resource"]["status"] = "bogus"
    assert [p.field for p in errors(resource)] == ["entry[1].resource.status"]


def test_contained_resources_dispatch_on_resource_type() -> None:
    resource = phq9_total()
    resource["contained"] = [{"resourceType": "Patient", "id": "p1", "gender": "female"}]
    resource["subject"] = {"reference": "#p1"}
    assert is_valid(resource)
    resource["contained"][0]["gender"] = "F"
    assert [p.field for p in errors(resource)] == ["contained[0].gender"]


def test_unknown_or_missing_resource_type() -> None:
    assert [p.field for p in errors({"resourceType": "Basic"})] == ["resourceType"]
    assert [p.field for p in errors({"id": "x"})] == ["resourceType"]
    with pytest.raises(FhirValidationError):
        validator_for("Basic")


def test_validator_for_is_the_hot_loop_object() -> None:
    check = validator_for("Observation").validate_python
    assert check(phq9_total()) is None
    with pytest.raises(ValidationError) as info:
        check(patient())  # resourceType must equal the validator's type
    assert problems_from(info.value, "Observation")


def test_fast_tier_takes_the_usual_shape_and_full_tier_the_rest() -> None:
    fast = _root("Patient", fast=True).validate_python
    full = _root("Patient", fast=False).validate_python
    resource = patient()  # has `_given` and `_birthDate`: not in the fast profile
    with pytest.raises(ValidationError):
        fast(resource)
    full(resource)
    assert is_valid(resource)
    _root("CarePlan", fast=True).validate_python(care_plan())
