"""Fixtures of the API tests: a seeded Services on a temporary SQLite file, the app, a TestClient, and real tokens.

The clinic fixtures are ingested once per session into a template database; each test gets its own copy, so tests
may ingest, disclose and revoke freely. The clock is fixed at 2026-06-01T12:00:00Z.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

from adapter.api import create_app
from adapter.services import Services
from adapter.settings import Settings
from adapter.sync.partners import load_partners
from tests.conftest import FIXTURES, ROOT

with warnings.catch_warnings():
    # Starlette deprecates driving its TestClient with httpx in favour of `httpx2`, not installed here; the
    # warning fires once, at import.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CLINIC = FIXTURES / "clinic"
PARTNERS_FILE = ROOT / "partners" / "local-peers.yaml"
INSURER_FILE = ROOT / "tests" / "ur" / "partners-insurer.yaml"  # written by the UR tests' author

TokenFactory = Callable[..., str]


def fixed_clock() -> datetime:
    return NOW


def api_settings(database: Path, **overrides: object) -> Settings:
    return Settings(database_url=f"sqlite:///{database}", partners_file=PARTNERS_FILE, **overrides)  # type: ignore[arg-type]


def open_services(database: Path, **overrides: object) -> Services:
    services = Services.from_paths(api_settings(database, **overrides), {}, [CLINIC], clock=fixed_clock)
    if INSURER_FILE.exists():
        services.partners = {**services.partners, **{p.id: p for p in load_partners(INSURER_FILE, {})}}
    return services


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fixtures/clinic ingested once; tests copy the file."""
    path = tmp_path_factory.mktemp("template") / "adapter.db"
    open_services(path).close()
    return path


@pytest.fixture
def database(seeded_database: Path, tmp_path: Path) -> Path:
    path = tmp_path / "adapter.db"
    shutil.copyfile(seeded_database, path)
    return path


@pytest.fixture
def services(database: Path) -> Iterator[Services]:
    services = open_services(database)
    yield services
    services.close()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def token(services: Services) -> TokenFactory:
    """token(role, partner_id=None, purposes=None, expires_at=None) -> the secret of a new token. A partner token's
    purposes default to the partner's purpose of use in the partners file."""

    def mint(
        role: str,
        partner_id: str | None = None,
        purposes: list[str] | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        if role == "partner" and purposes is None and partner_id is not None:
            purposes = [services.partners[partner_id].purpose_of_use]
        _token, secret = services.tokens.create(
            role, NOW, partner_id=partner_id, purposes=purposes or (), expires_at=expires_at
        )
        return secret

    return mint


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
