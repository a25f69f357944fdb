"""Request limits: body size (413) and per-token rate (429 with Retry-After), both as OperationOutcomes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.api.limits import RateLimiter
from adapter.errors import RateLimitError
from adapter.services import Services
from tests.api.conftest import TokenFactory, bearer, open_services


@pytest.fixture
def limited(database: Path) -> Iterator[Services]:
    services = open_services(database, api_max_body_bytes=1000, api_rate_burst=3, api_rate_per_minute=60)
    yield services
    services.close()


def test_an_oversize_body_is_413(limited: Services) -> None:
    _token, secret = limited.tokens.create("ingest", limited.clock())
    client = TestClient(create_app(limited))
    response = client.post(
        "/records", content=b"[" + b" " * 2000 + b"]", headers={**bearer(secret), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-costly"


def test_a_body_without_content_length_is_cut_off_too(limited: Services) -> None:
    _token, secret = limited.tokens.create("ingest", limited.clock())
    client = TestClient(create_app(limited))

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(40):
            yield b" " * 100
        yield b"]"

    response = client.post("/records", content=chunks(), headers={**bearer(secret), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_token_over_its_rate_gets_429_with_retry_after(limited: Services) -> None:
    _token, first = limited.tokens.create("clinic-admin", limited.clock())
    _token, second = limited.tokens.create("clinic-admin", limited.clock())
    client = TestClient(create_app(limited))
    statuses = [client.get("/clients", headers=bearer(first)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/clients", headers=bearer(first))
    assert refused.json()["issue"][0]["code"] == "throttled"
    assert int(refused.headers["retry-after"]) >= 1
    # The limit is per token: another token is unaffected.
    assert client.get("/clients", headers=bearer(second)).status_code == 200


def test_the_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, monotonic=lambda: now[0])
    limiter.take("t")
    limiter.take("t")
    with pytest.raises(RateLimitError) as refused:
        limiter.take("t")
    assert refused.value.retry_after == 1
    now[0] = 1.0
    limiter.take("t")  # one second later, one request more (60 per minute)


def test_unrelated_routes_are_not_limited_by_body_size(client: TestClient, token: TokenFactory) -> None:
    # The default limit (5 MB) accepts a whole fixture export.
    from tests.conftest import FIXTURES

    data = (FIXTURES / "clinic" / "16-week-across-programs.xml").read_bytes()
    response = client.post(
        "/records", content=data, headers={**bearer(token("ingest")), "Content-Type": "application/xml"}
    )
    assert response.status_code == 200
