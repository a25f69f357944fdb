"""A medication order's start and end reach the MedicationRequest whatever else the order has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fhirpathpy import evaluate
from fhirpathpy.models import models

from tests.mappings.scenario import CLIENT, map_records, of_type

BOUNDS = "dosageInstruction.timing.repeat.bounds"


def _order(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "medication_order",
        "id": "mo-1",
        "client": CLIENT,
        "program": "prog-omh",
        "drug": {"rxnorm": "312938", "text": "sertraline 50 mg tablet"},
        "prescriber": "pr-okafor",
        "authored_at": "2026-01-01T10:00:00-05:00",
        "status": "active",
        **extra,
    }


def _bounds(tmp_path: Path, order: dict[str, Any]) -> list[Any]:
    (request,) = of_type(map_records(tmp_path, [order]), "MedicationRequest")  # strict: fhir.resources too
    return list(evaluate(request, BOUNDS, {}, models["r4"]))


def test_an_order_without_a_dosage_keeps_its_start_and_end(tmp_path: Path) -> None:
    assert _bounds(tmp_path, _order(start="2026-01-02", end="2026-03-01")) == [
        {"start": "2026-01-02", "end": "2026-03-01"}
    ]


def test_an_open_ended_order_without_a_dosage_keeps_its_start(tmp_path: Path) -> None:
    assert _bounds(tmp_path, _order(start="2026-01-02")) == [{"start": "2026-01-02"}]


def test_an_order_with_a_dosage_carries_the_dates_in_that_dosage(tmp_path: Path) -> None:
    dosage = {"text": "1 tablet by mouth daily", "frequency": 1}
    (request,) = of_type(map_records(tmp_path, [_order(dosage=dosage, start="2026-01-02")]), "MedicationRequest")
    (instruction,) = request["dosageInstruction"]
    assert instruction["text"] == "1 tablet by mouth daily"
    assert instruction["timing"]["repeat"]["boundsPeriod"] == {"start": "2026-01-02"}


def test_an_order_without_dosage_or_dates_has_no_dosage_instruction(tmp_path: Path) -> None:
    (request,) = of_type(map_records(tmp_path, [_order()]), "MedicationRequest")
    assert "dosageInstruction" not in request
