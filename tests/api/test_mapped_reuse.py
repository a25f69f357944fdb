"""The service maps a client again only when something it maps from changed (its records, or the directory)."""

from __future__ import annotations

import orjson

from adapter.fhir import dumps
from adapter.services import Services
from tests.api.test_records import _fixture_records, _new_client


def _ingest(services: Services, records: list[dict[str, object]]) -> None:
    report, _queued = services.ingest(orjson.dumps({"records": records}), xml=False)
    assert report.accepted, report.problems


def test_an_ingest_remaps_only_the_clients_it_changed(services: Services) -> None:
    before = {c.client_id: c for c in services.mapped_charts()}
    _ingest(services, _new_client())
    after = {c.client_id: c for c in services.mapped_charts()}
    assert set(after) == {*before, "cl-90"}
    for client_id, chart in before.items():
        assert after[client_id] is chart, client_id  # unchanged records: the same mapped chart, not mapped again
    client, assessment = _new_client()
    answers = {**assessment["answers"], "1": 0}  # a corrected answer (and no stated total to contradict it)
    rescored = {k: v for k, v in assessment.items() if k != "stated_total"} | {"answers": answers}
    _ingest(services, [client, rescored])
    changed = services.mapped_chart("cl-90")
    assert changed is not None and changed is not after["cl-90"]
    assert dumps(changed.bundle) != dumps(after["cl-90"].bundle)
    assert services.mapped_chart("cl-01") is before["cl-01"]


def test_a_directory_change_remaps_every_client(services: Services) -> None:
    before = {c.client_id: c for c in services.mapped_charts()}
    practitioner = next(r for r in _fixture_records("directory.json") if r["kind"] == "practitioner")
    _ingest(services, [{**practitioner, "name": {**practitioner["name"], "family": "Renamed"}}])
    for chart in services.mapped_charts():
        assert chart is not before[chart.client_id]
