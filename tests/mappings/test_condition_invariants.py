"""Condition invariants con-4 and con-5 (R4, severity error), checked with their own FHIRPath expressions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from tests.mappings.scenario import CLIENT, map_records, of_type

# Verbatim from the R4 Condition StructureDefinition (hl7.org/fhir/R4/condition.html#invs).
CON_4 = (
    "abatement.empty() or clinicalStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-clinical'"
    " and (code='resolved' or code='remission' or code='inactive')).exists()"
)
CON_5 = (
    "verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status'"
    " and code='entered-in-error').empty() or clinicalStatus.empty()"
)


def _condition(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    diagnosis = {
        "kind": "diagnosis",
        "id": "dx-1",
        "client": CLIENT,
        "program": "prog-omh",
        "code": "F32.A",
        "onset": "2025-01-01",
        "recorded_at": "2025-06-02T10:00:00-05:00",
        **extra,
    }
    (condition,) = of_type(map_records(tmp_path, [diagnosis]), "Condition")
    return condition


def _holds(resource: dict[str, Any], expression: str) -> bool:
    return list(evaluate(resource, expression, {}, models["r4"])) == [True]


@pytest.mark.parametrize("clinical_status", ["resolved", "remission", "inactive"])
def test_an_abated_diagnosis_entered_in_error_satisfies_con4_and_con5(tmp_path: Path, clinical_status: str) -> None:
    condition = _condition(
        tmp_path, clinical_status=clinical_status, verification_status="entered-in-error", abatement="2025-06-01"
    )
    assert _holds(condition, CON_5) and "clinicalStatus" not in condition
    assert _holds(condition, CON_4) and "abatementDateTime" not in condition
    assert condition["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert condition["onsetDateTime"] == "2025-01-01"  # only what the invariants rule out is left out


def test_an_abated_diagnosis_keeps_its_abatement(tmp_path: Path) -> None:
    condition = _condition(tmp_path, clinical_status="resolved", abatement="2025-06-01")
    assert condition["abatementDateTime"] == "2025-06-01"
    assert _holds(condition, CON_4) and _holds(condition, CON_5)
