"""The organization that holds a client's records authors its Bundle: without a program, no Bundle is guessed."""

from __future__ import annotations

import pytest

from adapter.errors import InputError
from adapter.pipeline import MappedChart, map_chart
from adapter.records.chart import Chart
from tests.consent.harness import clinic


def test_a_chart_without_any_program_is_a_clear_input_error() -> None:
    loaded, ctx = clinic().loaded, clinic().ctx
    chart = next(c for c in loaded.clinic.charts if c.client.program)
    lone = Chart(client=chart.client.model_copy(update={"program": None}), source=chart.source)
    with pytest.raises(InputError, match="needs the program that registered it") as caught:
        map_chart(lone, ctx)
    assert [(p.record_id, p.field) for p in caught.value.problems] == [(chart.client.id, "program")]


def test_a_client_without_program_takes_it_from_its_records() -> None:
    loaded, ctx = clinic().loaded, clinic().ctx
    chart = next(c for c in loaded.clinic.charts if c.client.program and c.assessments)
    unregistered = Chart(
        client=chart.client.model_copy(update={"program": None}), source=chart.source, assessments=chart.assessments
    )
    mapped = map_chart(unregistered, ctx)
    assert isinstance(mapped, MappedChart)
    provenance = next(r for r in mapped.resources if r["resourceType"] == "Provenance")
    assert provenance["agent"][0]["who"] == ctx.clinic_ref(chart.assessments[0].program)
