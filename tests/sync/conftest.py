"""Shared fixtures of the sync tests: the shipped fixtures mapped once, partners, stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tenacity import Retrying, wait_none

from adapter.pipeline import MappedChart, context, load, map_charts
from adapter.settings import Settings
from adapter.sync.partners import Partner, parse_partners
from adapter.sync.release import Released, Withheld
from adapter.sync.retry import retry_policy
from tests.conftest import FIXTURES

CLINIC = FIXTURES / "clinic"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def charts(settings: Settings) -> list[MappedChart]:
    loaded = load([CLINIC])
    mapped = list(map_charts(loaded.clinic, context(loaded.clinic, settings)))
    assert all(isinstance(m, MappedChart) for m in mapped)
    return mapped  # type: ignore[return-value]


def partner(**overrides: Any) -> Partner:
    data: dict[str, Any] = {
        "id": "psych",
        "name": "Northfield Psychiatric Associates",
        "role": "psychiatry",
        "base_url": "http://fake.test/fhir",
        "recipient": {"organization_npi": "1728035910"},
        "attested": {"treating_relationship": True},
        "retry": {"attempts": 4, "initial_wait_s": 0, "max_wait_s": 0, "jitter_s": 0, "item_attempts": 3},
        "rate_limit": {"requests_per_second": 100000, "burst": 1000},
    }
    data.update(overrides)
    return parse_partners({"partners": [data]}, "test", {})[0]


def no_wait(p: Partner) -> Callable[[], Retrying]:
    """The partner's policy without waiting (STYLE habit 6: tests pass no-wait strategies)."""
    return lambda: retry_policy(p.retry, wait=wait_none(), sleep=lambda _s: None, honor_retry_after=False)


def release_except(denied: Callable[[dict[str, Any]], bool] = lambda _r: False):  # type: ignore[no-untyped-def]
    """A stand-in release point for transport tests: everything but what `denied` names."""

    def release(chart: MappedChart, _partner: Partner, _instant: datetime) -> Released:
        keep = [r for r in chart.resources if not denied(r)]
        withheld = [Withheld(f"{r['resourceType']}/{r['id']}", "test: denied") for r in chart.resources if denied(r)]
        return Released(keep, withheld)

    return release


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'sync.db'}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session (tests/sync/postgres.py); fails, never skips, without it."""
    from tests.sync.postgres import PostgresUnavailableError, throwaway_cluster

    try:
        with throwaway_cluster() as url:
            yield url
    except PostgresUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
