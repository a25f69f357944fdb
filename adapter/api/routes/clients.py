"""Clinic staff's preview: the clients the store holds, and one client's mapped Bundle (before any consent
filtering: this is the clinic's own view, never a partner's)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from adapter.api.deps import ServicesDep, StaffCaller
from adapter.api.responses import fhir_response
from adapter.errors import NotFoundError

router = APIRouter(tags=["clients"])


@router.get("/clients", summary="The record ids of the clients in the store")
def list_clients(services: ServicesDep, caller: StaffCaller) -> dict[str, list[str]]:
    return {"clients": services.client_ids()}


@router.get(
    "/clients/{client_id}/fhir",
    summary="The client's mapped FHIR Bundle (JSON or XML: Accept or _format)",
    response_class=Response,
    responses={200: {"content": {"application/fhir+json": {}, "application/fhir+xml": {}}}},
)
async def client_bundle(client_id: str, request: Request, services: ServicesDep, caller: StaffCaller) -> Response:
    mapped = await run_in_threadpool(services.mapped_chart, client_id)
    if mapped is None:
        raise NotFoundError("no such client in the store")
    return fhir_response(mapped.bundle, request)
