"""`POST /records`: the clinic's EHR sends records (JSON or XML, one or a batch); the batch is stored whole or not
at all (adapter/store/records.py), and every client it changed is queued for sync with every partner."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from adapter.api.deps import IngestCaller, ServicesDep
from adapter.errors import InputError, UnsupportedMediaError
from adapter.store.records import RecordResult

router = APIRouter(tags=["records"])

_JSON = ("application/json", "application/fhir+json")
_XML = ("application/xml", "text/xml")

_BODY_SCHEMA: dict[str, Any] = {
    "description": 'one record, a list of records, or {"records": [...]} (docs/records.md); or XML <records>',
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "object", "description": 'a record (has `kind`) or {"records": [...]}'},
                    {"type": "array", "items": {"type": "object"}},
                ]
            }
        },
        "application/xml": {"schema": {"type": "string", "description": "<records> of record elements"}},
    },
}


def _is_xml(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in _XML or mime.endswith("+xml"):
        return True
    if mime in _JSON or mime.endswith("+json"):
        return False
    raise UnsupportedMediaError("send records as application/json or application/xml")


def _result(r: RecordResult) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "id": r.record_id,
        "client": r.client_id,
        "outcome": r.outcome,
        **({"problems": [p.line() for p in r.problems]} if r.problems else {}),
    }


@router.post(
    "/records",
    summary="Ingest clinic records (all or nothing per batch)",
    openapi_extra={"requestBody": _BODY_SCHEMA},
    responses={422: {"description": "records rejected: an OperationOutcome naming each record and field"}},
)
async def ingest_records(request: Request, services: ServicesDep, caller: IngestCaller) -> JSONResponse:
    xml = _is_xml(request.headers.get("content-type", ""))
    body = await request.body()
    report, queued = await run_in_threadpool(services.ingest, body, xml=xml)
    if not report.accepted:
        rejected = sum(1 for r in report.results if r.outcome == "rejected") or len(report.problems)
        raise InputError(f"{rejected} record(s) rejected: nothing of this batch was stored", report.problems)
    counts = {o: sum(1 for r in report.results if r.outcome == o) for o in ("created", "updated", "unchanged")}
    return JSONResponse({**counts, "sync_queued": queued, "results": [_result(r) for r in report.results]})
