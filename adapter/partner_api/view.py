"""A partner's view of the clinic's records: exactly what a sync to that partner would send.

Each client's view is the sync's own release function (adapter/sync/release.py, which calls
``adapter.consent.enforce``), run on the client's whole chart for the calling partner with the request's purpose
of use at the request's instant, then narrowed to the resource types the partner receives (``push`` in the
partners file), as the push does. The 42 CFR 2.32 notice enforce attaches always stays with its Part 2 data.

The audit trail is the accounting of what was disclosed (45 CFR 164.528, 42 CFR 2.24), and an answer discloses
far less than the charts it was computed from (one page, one read, or only a total). So the release writes its
AuditEvents into this request's buffer, not the audit log, and :meth:`CallerView.disclose` writes exactly the
records of the resources the answer returns, in one transaction, before the answer is sent; if that fails, the
request fails and nothing is sent. The notice has no record of its own (enforce audits resource decisions; a
sync does not audit it either): it accompanies Part 2 resources whose records are written.

Nothing here is cached across requests: consents are judged at the request's instant, so a revoked consent
takes effect on the next request. Within one request a client's release is computed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from adapter.consent import AuditLog, AuditRecord
from adapter.consent.audit import AuditBuffer
from adapter.consent.graph import key_of
from adapter.consent.notice import NOTICE_CODE
from adapter.consent.vocab import PART2, V3_ACT_CODE
from adapter.errors import AuditError
from adapter.fhir import Resource
from adapter.mappings.profiles import ADAPTER_CODES
from adapter.pipeline import MappedChart
from adapter.sync.partners import Partner
from adapter.sync.release import ReleaseFn

ReleaseFactory = Callable[[AuditLog], ReleaseFn]
"""The release point writing its audit records to the AuditLog given (``lambda audit: consent_release(audit)``)."""


class ChartSource(Protocol):
    """Where the clients' mapped charts come from (adapter.services.Services in the service)."""

    def mapped_chart(self, client_id: str) -> MappedChart | None: ...


def is_notice(resource: Mapping[str, Any]) -> bool:
    """The consent engine's 42 CFR 2.32 redisclosure notice (adapter/consent/notice.py)."""
    if resource.get("resourceType") != "DocumentReference":
        return False
    codings = (resource.get("type") or {}).get("coding") or ()
    return any(c.get("system") == ADAPTER_CODES and c.get("code") == NOTICE_CODE for c in codings)


def carries_part2(resource: Mapping[str, Any]) -> bool:
    """Labeled 42CFRPart2 by the consent engine (the notice itself excluded)."""
    security = (resource.get("meta") or {}).get("security") or ()
    return not is_notice(resource) and any(c.get("system") == V3_ACT_CODE and c.get("code") == PART2 for c in security)


@dataclass(frozen=True)
class ReleasedChart:
    """One client's released resources, by key, in release order; the key of its 2.32 notice, if any; and the
    release's audit record of each released resource, by key (written only for those an answer returns)."""

    client_id: str
    resources: Mapping[str, Resource]
    notice: str | None
    audit: Mapping[str, AuditRecord] = field(default_factory=dict, repr=False)


def released_chart(
    client_id: str, resources: Iterable[Resource], partner: Partner, audit: Sequence[AuditRecord] = ()
) -> ReleasedChart:
    """The released resources narrowed to the types the partner receives, keeping the notice with Part 2 data."""
    released = list(resources)
    kept = {key_of(r): r for r in released if partner.pushes(str(r["resourceType"])) and not is_notice(r)}
    notices = [r for r in released if is_notice(r)]
    notice = None
    if notices and any(carries_part2(r) for r in kept.values()):
        notice = key_of(notices[0])
        kept[notice] = notices[0]
    records = {r.resource: r for r in audit if r.outcome == "released" and r.resource in kept}
    return ReleasedChart(client_id, kept, notice, records)


@dataclass
class CallerView:
    """One request's view: a partner, the purpose of use its credentials carry, the request's instant; the
    release point (built on this request's audit buffer) and the audit log an answer's records go to."""

    partner: Partner
    purpose: str
    instant: datetime
    source: ChartSource
    release_for: ReleaseFactory
    audit: AuditLog
    _pending: AuditBuffer = field(default_factory=AuditBuffer, repr=False)
    _release: ReleaseFn | None = field(default=None, repr=False)
    _done: dict[str, ReleasedChart | None] = field(default_factory=dict, repr=False)

    @property
    def as_recipient(self) -> Partner:
        """The partner as the release point sees it: the purpose is the caller's, everything else (organization
        NPI, attested context) from the partners file. model_copy skips validation on purpose: the purpose was
        checked against the token's grants, and DisclosureRequest validates it against v3-ActReason."""
        return self.partner.model_copy(update={"purpose_of_use": self.purpose})

    def released(self, client_id: str) -> ReleasedChart | None:
        if client_id not in self._done:
            chart = self.source.mapped_chart(client_id)
            if chart is None:
                self._done[client_id] = None
            else:
                if self._release is None:
                    self._release = self.release_for(self._pending)
                self._pending.take()  # nothing of an earlier release can be attributed to this one
                out = self._release(chart, self.as_recipient, self.instant)
                records = self._pending.take()
                self._done[client_id] = released_chart(client_id, out.resources, self.partner, records)
        return self._done[client_id]

    def disclose(self, answer: Iterable[tuple[ReleasedChart, str]]) -> int:
        """Write the audit records of what an answer returns ((chart, key) of each resource, the notice included)
        to the audit log, in one transaction, and return how many. Call it before the answer is sent: it raises
        AuditError if the write fails, and when a returned resource has no record of its release (fail closed:
        nothing may be disclosed unaudited)."""
        records: dict[tuple[str, str], AuditRecord] = {}
        for chart, key in answer:
            if key == chart.notice:
                continue
            record = chart.audit.get(key)
            if record is None:
                raise AuditError("a resource of the answer has no audit record of its release: nothing was sent")
            records.setdefault((record.disclosure_id, key), record)
        if records:
            self.audit.record(list(records.values()))
        return len(records)
