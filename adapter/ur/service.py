"""The utilization-review service the API calls: find the chart and the payer, build the package, audited."""

from __future__ import annotations

from datetime import datetime

from adapter.errors import NotFoundError
from adapter.services import Services
from adapter.ur.catalog import UrAsk, UrRequest
from adapter.ur.package import UrPackage, build_package, check_payer


def ur_package(services: Services, ask: UrAsk, at: datetime | None = None, *, by: str = "bh-adapter ur") -> UrPackage:
    """`ask` at `at` (default: the services' clock). Unknown client or payer -> NotFoundError."""
    partner = services.partners.get(ask.payer)
    if partner is None:
        raise NotFoundError(f"no payer {ask.payer!r} among the partners")
    check_payer(partner, ask.payer)
    chart = services.mapped_chart(ask.client)
    if chart is None:
        raise NotFoundError(f"no client {ask.client!r}")
    request = UrRequest(**ask.model_dump(), instant=at or services.clock())
    return build_package(
        chart, partner, request, audit=services.audit, by=by, timezone=services.settings.clinic_timezone
    )
