"""Golden files pin the mapping output per fixture client; `pytest --update-golden` rewrites them."""

from __future__ import annotations

import pytest

from adapter import fhir
from adapter.pipeline import LoadedClinic, MappedChart, context, map_chart
from adapter.settings import Settings
from tests.conftest import GOLDEN


def test_fixtures_load_without_problems(loaded_clinic: LoadedClinic) -> None:
    assert [p.line() for p in loaded_clinic.problems] == []
    assert len(loaded_clinic.clinic.charts) >= 12


def test_every_client_matches_its_golden_file(mapped: dict[str, MappedChart], update_golden: bool) -> None:
    mismatched = []
    for client_id, chart in sorted(mapped.items()):
        path = GOLDEN / f"{client_id}.json"
        produced = fhir.dumps(chart.bundle, pretty=True, newline=True)
        if update_golden:
            path.write_bytes(produced)
        elif not path.exists() or path.read_bytes() != produced:
            mismatched.append(client_id)
    stale = {p.stem for p in GOLDEN.glob("*.json")} - set(mapped)
    if update_golden:
        for name in stale:
            (GOLDEN / f"{name}.json").unlink()
    assert mismatched == [], "mapping output changed; inspect, then run pytest --update-golden"
    assert not stale or update_golden, f"golden files without a fixture client: {sorted(stale)}"


def test_mapping_twice_is_byte_identical(loaded_clinic: LoadedClinic, mapped: dict[str, MappedChart]) -> None:
    ctx = context(loaded_clinic.clinic, Settings())
    for chart in loaded_clinic.clinic.charts:
        again = map_chart(chart, ctx)
        assert fhir.dumps(again.bundle) == fhir.dumps(mapped[chart.client.id].bundle)


@pytest.mark.parametrize("namespace", ["11111111-2222-5333-8444-555555555555"])
def test_ids_depend_on_the_clinic_namespace(loaded_clinic: LoadedClinic, namespace: str) -> None:
    chart = loaded_clinic.clinic.charts[0]
    default = map_chart(chart, context(loaded_clinic.clinic, Settings()))
    other = map_chart(chart, context(loaded_clinic.clinic, Settings(id_namespace=namespace)))  # type: ignore[arg-type]
    assert {r["id"] for r in default.resources}.isdisjoint({r["id"] for r in other.resources})
