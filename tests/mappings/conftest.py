"""The shipped clinic fixtures, loaded and mapped once per test session."""

from __future__ import annotations

import pytest

from adapter.pipeline import LoadedClinic, MappedChart, context, load, map_chart
from adapter.settings import Settings
from tests.conftest import FIXTURES


@pytest.fixture(scope="session")
def loaded_clinic() -> LoadedClinic:
    return load([FIXTURES / "clinic"])


@pytest.fixture(scope="session")
def mapped(loaded_clinic: LoadedClinic) -> dict[str, MappedChart]:
    ctx = context(loaded_clinic.clinic, Settings())
    return {chart.client.id: map_chart(chart, ctx) for chart in loaded_clinic.clinic.charts}
