"""The shipped clinic fixtures, loaded and mapped once per session; a fresh SQLite audit store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.consent import SqlAuditLog
from adapter.mappings.context import MappingContext
from adapter.pipeline import LoadedClinic, MappedChart
from tests.consent.harness import clinic


@pytest.fixture(scope="session")
def loaded_clinic() -> LoadedClinic:
    return clinic().loaded


@pytest.fixture(scope="session")
def ctx() -> MappingContext:
    return clinic().ctx


@pytest.fixture(scope="session")
def mapped() -> dict[str, MappedChart]:
    return clinic().mapped


@pytest.fixture
def audit_log(tmp_path: Path) -> SqlAuditLog:
    return SqlAuditLog(f"sqlite:///{tmp_path / 'audit.db'}")
