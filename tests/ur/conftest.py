"""Fixtures of the utilization-review tests: charts mapped from fixtures/clinic (or with the test-only directory
and consents of tests/ur/data), the insurer partners, a request factory and an in-memory audit log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from adapter.consent import AuditRecord
from adapter.pipeline import MappedChart, context, load, map_chart
from adapter.settings import Settings
from adapter.sync.partners import Partner, load_partners
from adapter.ur import UrRequest
from tests.conftest import FIXTURES, ROOT

UR = ROOT / "tests" / "ur"
DATA = UR / "data"
CLINIC = FIXTURES / "clinic"
INSTANT = datetime.fromisoformat("2026-10-30T10:00:00-04:00")


class MemoryAudit:
    """An AuditLog that keeps what enforce records (the tests read it back)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, records: Sequence[AuditRecord]) -> None:
        self.records.extend(records)


def chart_of(client_id: str, *paths: Path) -> MappedChart:
    loaded = load(list(paths) or [CLINIC])
    assert not loaded.problems, [p.line() for p in loaded.problems]
    chart = next(c for c in loaded.clinic.charts if c.client.id == client_id)
    return map_chart(chart, context(loaded.clinic, Settings()))


def cl02_with(*consent_files: str) -> MappedChart:
    """cl-02 (opioid use disorder, Part 2 program) with the test directory and the named extra consents."""
    extra = [DATA / name for name in consent_files]
    return chart_of("cl-02", CLINIC / "02-oud-buprenorphine-part2.json", DATA / "directory.json", *extra)


@pytest.fixture(scope="session")
def partners() -> dict[str, Partner]:
    return {p.id: p for p in load_partners(UR / "partners-insurer.yaml", {})}


@pytest.fixture(scope="session")
def clinic_charts() -> dict[str, MappedChart]:
    loaded = load([CLINIC])
    ctx = context(loaded.clinic, Settings())
    return {c.client.id: map_chart(c, ctx) for c in loaded.clinic.charts}


@pytest.fixture
def audit() -> MemoryAudit:
    return MemoryAudit()


RequestFactory = Callable[..., UrRequest]


@pytest.fixture
def make_request() -> RequestFactory:
    def make(client: str, level_of_care: str = "mh-intensive-outpatient", **changes: Any) -> UrRequest:
        fields: dict[str, Any] = {
            "client": client,
            "payer": "granite-mutual",
            "service": "S9480" if level_of_care.startswith("mh") else "H0015",
            "level_of_care": level_of_care,
            "start": date(2026, 11, 2),
            "end": date(2026, 12, 31),
            "instant": INSTANT,
        }
        return UrRequest(**(fields | changes))

    return make
