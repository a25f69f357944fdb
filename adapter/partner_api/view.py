"""A partner's view of the clinic's records: exactly what a sync to that partner would send.

Each client's view is the sync's own release function (adapter/sync/release.py, which calls
``adapter.consent.enforce`` and so audits every decision), run for the calling partner with the request's purpose
of use at the request's instant, then narrowed to the resource types the partner receives (``push`` in the
partners file), as the push does. The 42 CFR 2.32 notice enforce attaches always stays with its Part 2 data.

Nothing here is cached across requests: consents are judged at the request's instant, so a revoked consent
takes effect on the next request. Within one request a client's release is computed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from adapter.consent.graph import key_of
from adapter.consent.notice import NOTICE_CODE
from adapter.consent.vocab import PART2, V3_ACT_CODE
from adapter.fhir import Resource
from adapter.mappings.profiles import ADAPTER_CODES
from adapter.pipeline import MappedChart
from adapter.sync.partners import Partner
from adapter.sync.release import ReleaseFn


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
    """One client's released resources, by key, in release order; and the key of its 2.32 notice, if any."""

    client_id: str
    resources: Mapping[str, Resource]
    notice: str | None


def released_chart(client_id: str, resources: Iterable[Resource], partner: Partner) -> ReleasedChart:
    """The released resources narrowed to the types the partner receives, keeping the notice with Part 2 data."""
    released = list(resources)
    kept = {key_of(r): r for r in released if partner.pushes(str(r["resourceType"])) and not is_notice(r)}
    notices = [r for r in released if is_notice(r)]
    notice = None
    if notices and any(carries_part2(r) for r in kept.values()):
        notice = key_of(notices[0])
        kept[notice] = notices[0]
    return ReleasedChart(client_id, kept, notice)


@dataclass
class CallerView:
    """One request's view: a partner, the purpose of use its credentials carry, the request's instant."""

    partner: Partner
    purpose: str
    instant: datetime
    source: ChartSource
    release: ReleaseFn
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
                out = self.release(chart, self.as_recipient, self.instant)
                self._done[client_id] = released_chart(client_id, out.resources, self.partner)
        return self._done[client_id]
