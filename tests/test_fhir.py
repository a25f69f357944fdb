"""The fhir.resources shim: stable ids, canonical JSON, and the R4 rules R4B models miss."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter import fhir
from adapter.errors import FhirValidationError


@given(st.uuids(), st.text(min_size=1, max_size=30), st.lists(st.text(max_size=20), max_size=4))
def test_deterministic_id_is_uuid5_of_the_business_key(namespace: uuid.UUID, rtype: str, key: list[str]) -> None:
    assert fhir.deterministic_id(rtype, *key, namespace=namespace) == str(
        uuid.uuid5(namespace, "|".join([rtype, *key]))
    )


def test_decimals_keep_their_precision_on_the_wire() -> None:
    resource = {"resourceType": "Quantity", "value": Decimal("14.50")}
    assert fhir.dumps(resource) == b'{"resourceType":"Quantity","value":14.50}'
    assert fhir.loads(fhir.dumps(resource))["value"] == Decimal("14.50")
    assert str(fhir.loads(b'{"v": 14.50}')["v"]) == "14.50"


def _observation(**extra: object) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"},
        **extra,
    }


def test_reference_validate_accepts_valid_r4() -> None:
    fhir.reference_validate(_observation(valueQuantity={"value": 3}))


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        # R4B has Extension.valueCodeableReference; R4 does not.
        (
            _observation(extension=[{"url": "http://x", "valueCodeableReference": {"concept": {"text": "y"}}}]),
            "extension",
        ),
        # R4B widened Observation.subject; R4 allows Patient, Group, Device, Location only.
        (_observation(subject={"reference": "Practitioner/pr1"}), "subject"),
        (_observation(status=None), "status"),
    ],
)
def test_reference_validate_rejects_what_r4_forbids(resource: dict[str, object], field: str) -> None:
    resource = {k: v for k, v in resource.items() if v is not None}
    with pytest.raises(FhirValidationError) as info:
        fhir.reference_validate(resource)
    assert any(p.field and field in p.field for p in info.value.problems)
