"""The delivery ledger on a real SQLite file: lookups find exactly what was recorded, through the primary key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from adapter.sync import ledger
from adapter.sync.ledger import Mark
from adapter.sync.store import open_store


def test_lookup_finds_exactly_the_recorded_keys_across_types_and_slices(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'sync.db'}")
    keys = [(rtype, f"{rtype[:3].lower()}-{n}") for rtype in ("Observation", "Patient", "Task") for n in range(500)]
    ledger.record(engine, "p1", "sent", [Mark(k, f"h{i}", f"r{i}", "1") for i, k in enumerate(keys)], 1.0)
    ledger.record(engine, "p2", "sending", [Mark(k, "other") for k in keys[:10]], 1.0)
    wanted = [*keys[::2], ("Observation", "never-sent"), ("Condition", "obs-0")]
    found = ledger.lookup(engine, "p1", wanted)
    assert set(found) == set(keys[::2])  # more ids per type than one IN list holds, other partners apart
    assert found[keys[2]] == ledger.Delivery("sent", "h2", "r2", "1")


def test_lookup_uses_the_whole_primary_key(tmp_path: Path) -> None:
    """A row-value IN on (type, id) used only the partner column of the key on SQLite: each lookup scanned every
    row the partner had, which grows with every resource ever sent. The plan of the SQL lookup() runs must
    search the index on all three key columns."""
    engine = open_store(f"sqlite:///{tmp_path / 'sync.db'}")
    executed: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        executed.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    ledger.lookup(engine, "p", [("Observation", "a"), ("Observation", "b")])
    event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = [(s, p) for s, p in executed if "sync_deliveries" in s]
    with engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    assert "partner_id=? AND resource_type=? AND resource_id=?" in plan, plan
