"""The app factory: routers, limits, the request log, and errors as OperationOutcomes.

Middleware, outermost first: the request log (every request, and the 500 of last resort), then the body-size cap.
Inside, errors become OperationOutcomes (`application/fhir+json`) with the right status: AdapterErrors by their
own table (adapter/errors.py), the framework's HTTP errors by status, request validation as 422 naming the field
(never echoing the input).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapter import __version__
from adapter.api.audit import RequestAuditMiddleware
from adapter.api.limits import BodyLimitMiddleware, RateLimiter
from adapter.api.responses import outcome, outcome_response
from adapter.api.routes.clients import router as clients_router
from adapter.api.routes.disclosures import router as disclosures_router
from adapter.api.routes.fhir import router as fhir_router
from adapter.api.routes.ops import router as ops_router
from adapter.api.routes.records import router as records_router
from adapter.api.routes.ur import router as ur_router
from adapter.errors import AdapterError, RateLimitError
from adapter.services import Services

# Statuses whose framework message is safe and useful as it is; others get a generic text.
_PLAIN = {404: "no such route", 405: "method not allowed on this route"}


async def _adapter_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdapterError)  # noqa: S101 - registered for AdapterError only
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitError) else {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="bh-fhir-adapter"'
    return outcome_response(exc, request=request, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    message = _PLAIN.get(exc.status_code) or (exc.detail if isinstance(exc.detail, str) else "request refused")
    return outcome_response(
        outcome(exc.status_code, message), status=exc.status_code, request=request, headers=exc.headers
    )


def _validation_issue(error: Any) -> dict[str, Any]:
    location = ".".join(str(p) for p in error.get("loc", ()))
    return {
        "severity": "error",
        "code": "invalid",
        "diagnostics": f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg")),
        **({"expression": [location]} if location else {}),
    }


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    issues = [_validation_issue(e) for e in exc.errors()] or outcome(422, "invalid request")["issue"]
    return outcome_response({"resourceType": "OperationOutcome", "issue": issues}, status=422, request=request)


def create_app(services: Services) -> FastAPI:
    """The service around `services` (one per process; the CLI's `serve` and the tests build it)."""
    settings = services.settings
    app = FastAPI(
        title="bh-fhir-adapter",
        version=__version__,
        summary="Behavioral-health records in, consent-enforced FHIR R4 out (docs/api.md)",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.state.rate_limiter = RateLimiter(settings.api_rate_per_minute, settings.api_rate_burst)
    app.add_exception_handler(AdapterError, _adapter_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestAuditMiddleware, services=services)  # added last: outermost
    app.include_router(records_router)
    app.include_router(clients_router)
    app.include_router(disclosures_router)
    app.include_router(ops_router)
    # The partner-facing FHIR API lives under /fhir (its router may already carry the prefix itself).
    app.include_router(fhir_router, prefix="" if fhir_router.prefix else "/fhir")
    app.include_router(ur_router)
    return app
