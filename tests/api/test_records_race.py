"""Two record stores (two processes' worth: separate engines and pools) ingest at once on one database.

Batch A adds a visit of cl-03 that lists diagnosis dx-90; batch B moves dx-90 to cl-04. Each is valid alone; both
together would store a visit that points across charts (after which every ingest is refused). A is held inside
its ingest, after validation and before its write, while B runs: B must wait for A's transaction and then be
refused naming the stored record it would break, never be accepted on the state A validated against.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from adapter.records.loader import load_paths
from adapter.store.records import IngestReport, RecordStore
from adapter.sync.store import open_store
from tests.api.conftest import CLINIC, NOW
from tests.conftest import FIXTURES

WAIT_S = 20  # bounds the test if B neither finishes nor reaches the lock (never reached when it passes)


def _fixture(name: str, record_id: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / "clinic" / name).read_text())
    records = data["records"] if isinstance(data, dict) else data
    return dict(next(r for r in records if r["id"] == record_id))


def _batches() -> tuple[bytes, bytes, bytes]:
    """(setup: an unlinked diagnosis dx-90 of cl-03, A: a visit of cl-03 listing it, B: dx-90 moved to cl-04)."""
    dx = {k: v for k, v in _fixture("03-depression-and-alcohol-use.json", "dx-03-mdd").items() if k != "visit"}
    dx["id"] = "dx-90"
    visit = {
        **_fixture("03-depression-and-alcohol-use.json", "vis-03-omh-ther"),
        "id": "vis-90",
        "diagnoses": ["dx-90"],
    }
    moved = {**dx, "client": "cl-04", "program": "prog-omh"}
    return json.dumps([dx]).encode(), json.dumps([visit]).encode(), json.dumps([moved]).encode()


def _ingest(store: RecordStore, data: bytes) -> IngestReport:
    return store.ingest_bytes(data, xml=False, at=NOW)


def _race(first: RecordStore, second: RecordStore) -> tuple[IngestReport, IngestReport]:
    """Run A on `first`; while A is between validation and write, run B on `second` in another thread. A goes on
    once B has either finished or started to wait for the store's lock."""
    setup, batch_a, batch_b = _batches()
    assert _ingest(first, setup).accepted
    progressed = threading.Event()
    out: dict[str, IngestReport] = {}

    def lock_requested(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "BEGIN IMMEDIATE" in statement or "pg_advisory_xact_lock" in statement:
            progressed.set()

    def run_b() -> None:
        try:
            out["b"] = _ingest(second, batch_b)
        finally:
            progressed.set()

    event.listen(second.engine, "before_cursor_execute", lock_requested)
    worker = threading.Thread(target=run_b)
    write = first._write

    def held(*args: Any, **kwargs: Any) -> IngestReport:
        worker.start()
        assert progressed.wait(WAIT_S)
        return write(*args, **kwargs)

    first._write = held  # type: ignore[method-assign]
    try:
        report_a = _ingest(first, batch_a)
    finally:
        first._write = write  # type: ignore[method-assign]
        worker.join(WAIT_S)
        event.remove(second.engine, "before_cursor_execute", lock_requested)
    assert not worker.is_alive()
    return report_a, out["b"]


def _check(first: RecordStore, second: RecordStore) -> None:
    report_a, report_b = _race(first, second)
    assert report_a.accepted
    assert not report_b.accepted  # both accepted is the defect
    lines = [p.line() for p in report_b.problems]
    assert any(
        "vis-90" in line and "diagnoses" in line and "stored record would no longer be valid" in line for line in lines
    ), lines
    assert [(r.record_id, r.outcome) for r in report_b.results] == [("dx-90", "not stored")]
    # The store stays consistent: what it holds assembles without problems, and an unrelated batch is accepted.
    for store in (first, second):
        assert store.clinic()[1].problems == []
    unchanged = json.dumps([_fixture("03-depression-and-alcohol-use.json", "vis-03-omh-ther")]).encode()
    assert _ingest(second, unchanged).accepted


@contextmanager
def _stores(url: str) -> Iterator[tuple[RecordStore, RecordStore]]:
    engines: list[Engine] = [open_store(url), open_store(url)]
    try:
        yield RecordStore(engines[0]), RecordStore(engines[1])
    finally:
        for engine in engines:
            engine.dispose()


def test_two_stores_ingesting_at_once_on_one_sqlite_file_never_both_accept(database: Path) -> None:
    with _stores(f"sqlite:///{database}") as (first, second):
        _check(first, second)


@pytest.mark.integration
def test_two_stores_ingesting_at_once_on_postgresql_never_both_accept() -> None:
    """The same race on PostgreSQL (a throwaway cluster: tests/sync/postgres.py; fails, never skips, without it)."""
    from tests.sync.postgres import PostgresUnavailableError, throwaway_cluster

    try:
        with throwaway_cluster() as url, _stores(url) as (first, second):
            with first.engine.begin() as conn:
                assert conn.scalar(text("SELECT count(*) FROM clinic_records")) == 0
            assert first.ingest(load_paths([CLINIC]), at=NOW).accepted
            _check(first, second)
    except PostgresUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
