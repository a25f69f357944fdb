"""Schemathesis against the app's own OpenAPI, bounded: generated requests on every operation, authenticated as
clinic staff. No answer may be a 5xx, and every error body must be an OperationOutcome."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from adapter.api import create_app
from adapter.services import Services
from tests.api.conftest import open_services

MAX_EXAMPLES = 25  # per operation: a few hundred requests in all, well under a minute


@pytest.fixture
def fuzzed_services(database: Path) -> Iterator[Services]:
    # A rate limit no fuzzing run reaches: the run is about answers, test_limits.py about the limit.
    services = open_services(database, api_rate_burst=1_000_000, api_rate_per_minute=1_000_000)
    yield services
    services.close()


@pytest.fixture
def admin_headers(fuzzed_services: Services) -> dict[str, str]:
    _token, secret = fuzzed_services.tokens.create("clinic-admin", fuzzed_services.clock())
    return {"Authorization": f"Bearer {secret}"}


def _is_outcome(body: bytes, content_type: str) -> bool:
    if "xml" in content_type:
        return b"<OperationOutcome" in body
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("resourceType") == "OperationOutcome" and bool(parsed.get("issue"))


def _check(case: schemathesis.Case, headers: dict[str, str]) -> None:
    response = case.call(headers={**(case.headers or {}), **headers})
    where = (case.method, case.path, response.status_code, response.content[:300])
    assert response.status_code < 500, where
    if response.status_code >= 400:
        content_type = str(response.headers.get("content-type", [""])[0])
        assert content_type.startswith(("application/fhir+json", "application/fhir+xml")), where
        assert _is_outcome(response.content, content_type), where


def test_no_server_errors_and_every_error_is_an_operation_outcome(
    fuzzed_services: Services, admin_headers: dict[str, str]
) -> None:
    # Schemathesis' own pytest plugin does not run under pytest 9 yet: drive each operation's strategy here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schemathesis' import-time deprecations of its optional dependencies
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzzed_services))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(o.method.upper(), o.path) for o in operations} >= {
        ("POST", "/records"),
        ("GET", "/clients/{client_id}/fhir"),
        ("POST", "/disclosures"),
        ("GET", "/ops/audit"),
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            _check(case, admin_headers)

        fuzz()
    total, _rows = fuzzed_services.requests.query(limit=1)
    assert total >= 5 * len(operations)  # the run really sent requests (every one is in the request log)
