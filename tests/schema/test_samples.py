"""Every hand-written sample is valid FHIR R4 for both validators."""

from __future__ import annotations

import pytest

from adapter.schema.validator import errors, is_valid, validate

from .helpers import reference_rejects
from .samples import SAMPLES, care_plan, phq9_total


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_passes_fhir_resources(name: str) -> None:
    assert not reference_rejects(SAMPLES[name]())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_passes_compiled_validator(name: str) -> None:
    resource = SAMPLES[name]()
    assert errors(resource) == []
    assert is_valid(resource)
    validate(resource)


@pytest.mark.parametrize("i", range(5))
def test_benchmark_shapes_vary_and_stay_valid(i: int) -> None:
    for resource in (phq9_total(i), care_plan(i), care_plan(i, with_reference=True)):
        assert errors(resource) == []
        assert not reference_rejects(resource)
