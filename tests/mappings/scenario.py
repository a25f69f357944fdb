"""Map a handful of records written for one test, the way `bh-adapter map` does: files on disk, the shipped
directory, the loader, the pipeline and its strict validation (fhir.resources as well as the fast validator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from adapter.pipeline import MappedChart, context, load, map_chart
from adapter.settings import Settings
from tests.conftest import FIXTURES

CLIENT = "cl-x"


def client(client_id: str = CLIENT) -> dict[str, Any]:
    return {
        "kind": "client",
        "id": client_id,
        "program": "prog-omh",
        "identifiers": [{"system": "https://riverbend.example.org/fhir/sid/mrn", "value": "RB-T1", "type": "MR"}],
        "names": [{"family": "Test", "given": ["Alex"]}],
        "birth_date": "1990-01-01",
        "gender": "female",
    }


def map_records(tmp_path: Path, records: list[dict[str, Any]]) -> MappedChart:
    """The chart of CLIENT mapped from `records` (plus a client record and the shipped directory)."""
    (tmp_path / "directory.json").write_bytes((FIXTURES / "clinic" / "directory.json").read_bytes())
    (tmp_path / "records.json").write_bytes(orjson.dumps({"records": [client(), *records]}))
    loaded = load([tmp_path])
    assert [p.line() for p in loaded.problems] == []
    ctx = context(loaded.clinic, Settings())
    (chart,) = [c for c in loaded.clinic.charts if c.client.id == CLIENT]
    return map_chart(chart, ctx, strict=True)


def of_type(chart: MappedChart, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in chart.resources if r["resourceType"] == resource_type]
