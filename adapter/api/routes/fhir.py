"""The partner-facing FHIR API under /fhir (docs/partner-api.md): parse, call adapter.partner_api, respond.

The partner and its purpose of use come from the bearer token (PartnerCaller), never from the query. Every
resource returned comes out of the consent release point for that partner and purpose at services.clock(), and
is recorded in the disclosure audit trail before the response is built (adapter/partner_api/view.py).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from adapter.api.deps import Caller, PartnerCaller, ServicesDep, require_roles
from adapter.api.responses import FHIR_JSON, FHIR_XML, fhir_response
from adapter.errors import ForbiddenError
from adapter.partner_api import CallerView, PageTokens, PartnerApi, capability_statement
from adapter.services import Services
from adapter.sync.release import consent_release

PREFIX = "/fhir"
router = APIRouter(prefix=PREFIX, tags=["FHIR (partners)"])
AnyCaller = Annotated[Caller, Depends(require_roles("clinic-admin", "ingest", "partner"))]
_FHIR_CONTENT: dict[int | str, dict[str, Any]] = {200: {"content": {FHIR_JSON: {}, FHIR_XML: {}}}}
_lock = threading.Lock()


def _api(request: Request, services: Services) -> PartnerApi:
    """One PartnerApi per app: it holds the resource index and the page-token key (kept in the database, so
    `next` links survive a restart and work across worker processes)."""
    with _lock:
        api: PartnerApi | None = getattr(request.app.state, "partner_api", None)
        if api is None:
            timezone = services.settings.clinic_timezone
            api = PartnerApi(
                services,
                services.records.version,
                lambda audit: consent_release(audit, timezone),
                services.audit,
                PageTokens(services.tokens.server_key("page-tokens")),
            )
            request.app.state.partner_api = api
        return api


def _view(request: Request, services: Services, caller: Caller) -> CallerView:
    partner = services.partners.get(caller.partner_id or "")
    if partner is None or caller.purpose is None:
        raise ForbiddenError("this token's partner is not in the partners file")
    return _api(request, services).view(partner, caller.purpose, services.clock())


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


@router.get("/metadata", summary="The CapabilityStatement", response_class=Response, responses=_FHIR_CONTENT)
def metadata(request: Request, services: ServicesDep, caller: AnyCaller) -> Response:
    return fhir_response(capability_statement(_base(request), services.clock()), request)


@router.get(
    "/{resource_type}/{resource_id}",
    summary="Read one resource of the partner's consent-enforced view (404 when absent or withheld)",
    response_class=Response,
    responses=_FHIR_CONTENT,
)
def read(
    resource_type: str, resource_id: str, request: Request, services: ServicesDep, caller: PartnerCaller
) -> Response:
    view = _view(request, services, caller)
    return fhir_response(_api(request, services).read(view, resource_type, resource_id), request)


@router.get(
    "/{resource_type}",
    summary="Search by patient, subject or _id, with _include and paging (searchset Bundle)",
    response_class=Response,
    responses=_FHIR_CONTENT,
)
def search(resource_type: str, request: Request, services: ServicesDep, caller: PartnerCaller) -> Response:
    view = _view(request, services, caller)
    params = request.query_params.multi_items()
    bundle = _api(request, services).search(view, resource_type, params, _base(request))
    return fhir_response(bundle, request)
