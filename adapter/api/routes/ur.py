"""`POST /ur-packages`: a client's utilization-review package for one payer (Da Vinci PAS-shaped Bundle), built
from what the consent release point released. Clinic staff only; every decision is audited by enforce.

The body is the Bundle (JSON or XML by content negotiation). What was left out travels as counts in headers
(no PHI): `X-Withheld-Count` (consent rules), `X-Excluded-Count` (minimum necessary) and `X-Disclosure-Id`, the
id the audit trail's AuditEvents carry, where each withheld resource and its rule can be read (docs/ur.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from adapter.api.deps import ServicesDep, StaffCaller
from adapter.api.responses import fhir_response
from adapter.ur import UrAsk
from adapter.ur.service import ur_package

router = APIRouter(tags=["utilization review"])


@router.post(
    "/ur-packages",
    summary="Build a utilization-review package (PAS-shaped Bundle) for a payer: minimum necessary, consent-enforced",
    response_class=Response,
    responses={200: {"content": {"application/fhir+json": {}, "application/fhir+xml": {}}}},
)
async def create_ur_package(body: UrAsk, request: Request, services: ServicesDep, caller: StaffCaller) -> Response:
    # Now, at the service's clock: a UR package is a disclosure to the payer (no instant from the body).
    package = await run_in_threadpool(ur_package, services, body, by=f"api token {caller.token_id}")
    headers = {
        "X-Disclosure-Id": package.disclosure_id,
        "X-Withheld-Count": str(len(package.withheld)),
        "X-Excluded-Count": str(len(package.excluded)),
    }
    return fhir_response(package.bundle, request, headers=headers)
