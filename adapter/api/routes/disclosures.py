"""`POST /disclosures`: release a client's records to a recipient through the consent release point, with the
decision report (what was withheld and why). Clinic staff only; every decision is audited by enforce.

A disclosure happens now: consents are judged at the service's clock and the audit records that instant. The
body has no instant (an expired consent must not release today, nor a disclosure be filed under another date).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from adapter.api.deps import ServicesDep, StaffCaller
from adapter.disclosures import DisclosureAsk, disclose

router = APIRouter(tags=["disclosures"])


class DisclosureBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(min_length=1, max_length=64, description="the client's record id, e.g. cl-02")
    recipient: str = Field(
        min_length=1, max_length=64, description="a partner id (partners file), an NPI, or a directory organization id"
    )
    purpose: str = Field(min_length=1, max_length=20, description="v3-ActReason purpose of use: TREAT, HPAYMT ...")
    emergency: str | None = Field(
        None, min_length=1, max_length=500, description="nature of a bona fide medical emergency (42 CFR 2.51)"
    )
    treating_relationship: bool = Field(False, description="attest a treating relationship with the client")
    recipient_is_medical_personnel: bool = Field(False, description="attest the recipient is medical personnel")


class DisclosureResult(BaseModel):
    bundle: dict[str, Any] = Field(description="the released FHIR Bundle (what the recipient may see)")
    report: dict[str, Any] = Field(description="the decision: released, withheld and why, consents considered")


@router.post("/disclosures", summary="Disclose a client's records to a recipient (consent-enforced, audited)")
async def create_disclosure(body: DisclosureBody, services: ServicesDep, caller: StaffCaller) -> DisclosureResult:
    ask = DisclosureAsk(**body.model_dump())
    bundle, report = await run_in_threadpool(disclose, services, ask, by=f"api token {caller.token_id}")
    return DisclosureResult(bundle=bundle, report=report)
