"""Operations: liveness and readiness (no auth, no detail), the sync outbox (status, retry) and the audit trails
(disclosure AuditEvents; the API's request log). Clinic staff only, except the two probes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime
from sqlalchemy import text

from adapter.api.deps import ServicesDep, StaffCaller
from adapter.api.responses import outcome, outcome_response
from adapter.ops import AuditFilter, audit_trail, outbox_retry, outbox_status
from adapter.sync.outbox import State


def _in_utc_range(value: datetime) -> datetime:
    """The store compares instants in UTC: one whose UTC time falls outside years 1-9999 cannot be one."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("an instant whose UTC time is between the years 1 and 9999") from None
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc_range)]

router = APIRouter(tags=["operations"])

Offset = Annotated[int, Query(alias="_offset", ge=0, le=1_000_000, description="first item of the page")]
Count = Annotated[int, Query(alias="_count", ge=1, le=500, description="items per page")]


@router.get("/health", summary="Liveness: the process answers")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: the database answers", responses={503: {"description": "not ready"}})
def ready(services: ServicesDep) -> Any:
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready; say nothing more (no detail leaks to an unauthenticated caller)
        return outcome_response(outcome(503, "not ready"), status=503)
    return JSONResponse({"status": "ready"})


@router.get("/ops/outbox", summary="Sync outbox: counts per partner and state, and items (newest first)")
def get_outbox(
    services: ServicesDep,
    caller: StaffCaller,
    offset: Offset = 0,
    count: Count = 50,
    partner: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[State | None, Query()] = None,
) -> dict[str, Any]:
    return outbox_status(services, partner_id=partner, state=state, offset=offset, count=count)


@router.post("/ops/outbox/{item_id}/retry", summary="Put a failed or dead outbox item back to pending")
def retry_outbox_item(
    item_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="outbox item id")],
    services: ServicesDep,
    caller: StaffCaller,
) -> dict[str, Any]:
    return outbox_retry(services, item_id)


@router.get("/ops/audit", summary="Disclosure audit trail: AuditEvents as a searchset Bundle, newest first")
async def get_audit(
    request: Request,
    services: ServicesDep,
    caller: StaffCaller,
    offset: Offset = 0,
    count: Count = 50,
    client: Annotated[str | None, Query(max_length=64, description="the client's record id")] = None,
    recipient: Annotated[str | None, Query(max_length=300, description="partner id, NPI or system|value")] = None,
    outcome_: Annotated[Literal["released", "withheld"] | None, Query(alias="outcome")] = None,
    since: Annotated[Instant | None, Query(description="recorded at or after (with offset)")] = None,
    until: Annotated[Instant | None, Query(description="recorded before (with offset)")] = None,
) -> JSONResponse:
    where = AuditFilter(client=client, recipient=recipient, outcome=outcome_, since=since, until=until)
    base = str(request.url.remove_query_params(["_offset", "_count"]))
    base += "&" if "?" in base else "?"
    bundle = await run_in_threadpool(audit_trail, services, where, offset=offset, count=count, base=base)
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.get("/ops/requests", summary="The API's request log (every request, refusals too), newest first")
def get_requests(
    services: ServicesDep,
    caller: StaffCaller,
    offset: Offset = 0,
    count: Count = 50,
    token: Annotated[str | None, Query(max_length=40, description="a token id")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    since: Annotated[Instant | None, Query()] = None,
    until: Annotated[Instant | None, Query()] = None,
) -> dict[str, Any]:
    total, rows = services.requests.query(
        token_id=token, status=status, since=since, until=until, offset=offset, limit=count
    )
    return {"total": total, "offset": offset, "items": rows}
