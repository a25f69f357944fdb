"""The push side of the consent release point: what of a client's chart one partner may receive.

The push worker only ever sends what a :data:`ReleaseFn` returns. The real one, :func:`consent_release`, wraps
``adapter.consent.enforce`` (the only function that may release data); unit tests of the transport pass their
own. There is no "send everything" release in the library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from adapter.consent import AuditLog, DisclosureRequest, Identifier, Reason, enforce
from adapter.consent.audit import AuditBuffer
from adapter.consent.vocab import rule
from adapter.fhir import Resource
from adapter.pipeline import MappedChart
from adapter.sync.partners import NPI_SYSTEM, Partner


@dataclass(frozen=True)
class Withheld:
    ref: str  # "Type/id"
    reason: str  # why, in words a compliance reader understands (no PHI)


@dataclass(frozen=True)
class Released:
    resources: list[Resource]
    withheld: list[Withheld] = field(default_factory=list)


ReleaseFn = Callable[[MappedChart, Partner, datetime], Released]


def _reason_text(reasons: Sequence[Reason]) -> str:
    parts = [
        f"{r.rule} {rule(r.rule).title}"
        + (f" ({r.detail})" if r.detail else "")
        + (f" [consent {r.consent}]" if r.consent else "")
        for r in reasons
    ]
    return "; ".join(dict.fromkeys(parts)) or "not permitted"


def disclosure_request(partner: Partner, instant: datetime, timezone: str | None = None) -> DisclosureRequest:
    """The consent engine's view of a push: the partner's organization NPI, its purpose of use, the instant,
    and the context the clinic attests for this partner (partners file)."""
    return DisclosureRequest(
        recipient_organizations=(Identifier(system=NPI_SYSTEM, value=partner.recipient.organization_npi),),
        recipient_name=partner.recipient.name or partner.name,
        purpose=partner.purpose_of_use,
        instant=instant,
        timezone=timezone,
        treating_relationship=partner.attested.treating_relationship,
        recipient_is_medical_personnel=partner.attested.recipient_is_medical_personnel,
    )


class ConsentRelease:
    """The real release: ``adapter.consent.enforce`` on the client's Bundle with the client's Consents. Every
    decision is written to the audit log by enforce itself; if that fails, enforce raises and nothing is sent.

    ``with release.batch():`` buffers the audit records of the releases made inside it and writes them in one
    transaction when the block ends, before the caller sends any of it (Pusher.push_batch): one durable write
    per batch of clients instead of one per client. If that write fails, the block raises and nothing of the
    batch may be sent.
    """

    def __init__(self, audit: AuditLog, timezone: str | None = None) -> None:
        self.audit = audit
        self.timezone = timezone  # the clinic's calendar (Settings.clinic_timezone)
        self._local = threading.local()  # a batch belongs to the thread that opened it (the API shares this)

    def __call__(self, chart: MappedChart, partner: Partner, instant: datetime) -> Released:
        consents = [r for r in chart.resources if r.get("resourceType") == "Consent"]
        audit: AuditLog = getattr(self._local, "buffer", None) or self.audit
        request = disclosure_request(partner, instant, self.timezone)
        # A MappedChart was validated when it was mapped: enforce checks again only what it changes.
        disclosure = enforce(chart.bundle, request, consents, audit=audit, validated_input=True)
        resources = [e["resource"] for e in disclosure.bundle.get("entry", []) if "resource" in e]
        withheld = [Withheld(w.resource, _reason_text(w.reasons)) for w in disclosure.withheld]
        return Released(resources, withheld)

    @contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._local, "buffer", None) is not None:  # nested: the outer batch writes
            yield
            return
        buffer = AuditBuffer()
        self._local.buffer = buffer
        try:
            yield
        finally:
            self._local.buffer = None
        if buffer.records:
            self.audit.record(buffer.records)  # raises AuditError: the caller sends nothing


def consent_release(audit: AuditLog, timezone: str | None = None) -> ConsentRelease:
    return ConsentRelease(audit, timezone)


@contextmanager
def release_batch(release: ReleaseFn) -> Iterator[None]:
    """`release.batch()` when the release buffers its audit (ConsentRelease); a plain block otherwise."""
    batch = getattr(release, "batch", None)
    if batch is None:
        yield
        return
    with batch():
        yield
