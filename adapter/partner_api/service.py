"""The partner-facing FHIR API as a service (no web framework): read, search with _include and paging, metadata.

Every resource it returns comes out of a :class:`CallerView` (the consent release point for that partner and
purpose at that instant). Reads find the clients that hold a key through an index of the mapped charts (cached
per record-store version); a resource the caller may not see is reported exactly like one that does not exist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from adapter.consent import AuditLog
from adapter.consent.graph import key_of
from adapter.consent.vocab import V3_CONFIDENTIALITY, vocabulary
from adapter.errors import NotFoundError, Problem
from adapter.fhir import Resource
from adapter.partner_api.paging import Page, PageTokens
from adapter.partner_api.query import PAGE_PARAM, PRESENTATION, SearchQuery, parse_search
from adapter.partner_api.searchparams import SEARCH
from adapter.partner_api.view import CallerView, ChartSource, ReleasedChart, ReleaseFactory, carries_part2
from adapter.pipeline import MappedChart
from adapter.sync.partners import Partner


class Charts(ChartSource, Protocol):
    """Services' surface the API needs (adapter.services.Services has it)."""

    def mapped_charts(self) -> Iterator[MappedChart]: ...


@dataclass(frozen=True)
class ResourceIndex:
    """Resource key -> the clients whose charts hold it (shared directory resources are in many)."""

    version: int
    clients: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, version: int, charts: Iterable[MappedChart]) -> ResourceIndex:
        holders: dict[str, list[str]] = {}
        for chart in charts:
            for resource in chart.resources:
                holders.setdefault(key_of(resource), []).append(chart.client_id)
        return cls(version, {key: tuple(sorted(set(ids))) for key, ids in holders.items()})

    def holders(self, keys: Iterable[str]) -> list[str]:
        return sorted({client for key in keys for client in self.clients.get(key, ())})


def not_found(resource_type: str, resource_id: str | None = None) -> NotFoundError:
    """The same answer for "no such resource" and "not released to you" (a 403 would confirm it exists)."""
    if resource_id is None:
        message = f"resource type {resource_type} is not served here"
        return NotFoundError(message, [Problem(message)])
    message = f"{resource_type}/{resource_id} is not known"
    return NotFoundError(message, [Problem(message)])


@dataclass(frozen=True)
class Match:
    chart: ReleasedChart
    resource: Resource

    @property
    def key(self) -> str:
        return key_of(self.resource)


class PartnerApi:
    """`release` builds the release point on an audit log (a request's buffer, view.py); `audit` is the durable
    log that receives the records of what each answer returns, before it is returned."""

    def __init__(
        self,
        charts: Charts,
        version: Callable[[], int],
        release: ReleaseFactory,
        audit: AuditLog,
        tokens: PageTokens,
    ) -> None:
        self._charts = charts
        self._version = version
        self._release = release
        self._audit = audit
        self._tokens = tokens
        self._index: ResourceIndex | None = None
        self._lock = threading.Lock()

    def view(self, partner: Partner, purpose: str, instant: datetime) -> CallerView:
        return CallerView(partner, purpose, instant, self._charts, self._release, self._audit)

    def index(self) -> ResourceIndex:
        version = self._version()
        with self._lock:
            if self._index is None or self._index.version != version:
                self._index = ResourceIndex.build(version, self._charts.mapped_charts())
            return self._index

    # --- read ----------------------------------------------------------------------------------------------------

    def read(self, view: CallerView, resource_type: str, resource_id: str) -> Resource:
        if resource_type not in SEARCH:
            raise not_found(resource_type)
        key = f"{resource_type}/{resource_id}"
        for client_id in self.index().holders([key]):
            chart = view.released(client_id)
            if chart is not None and key in chart.resources:
                view.disclose([(chart, key)])  # audited before it is returned (AuditError: nothing is)
                return chart.resources[key]
        raise not_found(resource_type, resource_id)

    # --- search --------------------------------------------------------------------------------------------------

    def search(self, view: CallerView, resource_type: str, params: Sequence[tuple[str, str]], base: str) -> Resource:
        """A searchset Bundle. `params` is the query string; `base` the API's base URL (for fullUrl and links)."""
        if resource_type not in SEARCH:
            raise not_found(resource_type)
        presentation = [(k, v) for k, v in params if k in PRESENTATION]
        own = [(k, v) for k, v in params if k not in PRESENTATION]
        if len(own) == 1 and own[0][0] == PAGE_PARAM:  # a next link (with anything else: 400 in parse_search)
            page = self._tokens.open(own[0][1], resource_type, view.partner.id, view.purpose)
            query, offset = parse_search(resource_type, page.params), page.offset
            self_params = own
        else:
            query, offset = parse_search(resource_type, params), 0
            self_params = list(query.canonical)
        matches = self._matches(view, query)
        window = matches[offset : offset + query.count]
        links = [{"relation": "self", "url": _url(base, resource_type, self_params + presentation)}]
        if query.count and offset + query.count < len(matches):
            token = self._tokens.issue(
                Page(resource_type, query.canonical, offset + query.count), view.partner.id, view.purpose
            )
            links.append({"relation": "next", "url": _url(base, resource_type, [(PAGE_PARAM, token), *presentation])})
        included = _included(query, window)
        # The page's entries are audited before the page is returned (AuditError: nothing is); a `_count=0`
        # search returns no resource and audits none.
        view.disclose((m.chart, m.key) for m in [*window, *included])
        entries = [_entry(base, m.resource, "match") for m in window]
        entries += [_entry(base, m.resource, "include") for m in included]
        return _searchset(len(matches), links, entries)

    def _matches(self, view: CallerView, query: SearchQuery) -> list[Match]:
        """Every released resource the query matches, each once, in key order (stable pages)."""
        index = self.index()
        patients, wanted = query.patient_keys(), query.wanted_keys()
        candidates = None if patients is None else set(index.holders(patients))
        if wanted is not None:
            by_id = set(index.holders(wanted))
            candidates = by_id if candidates is None else candidates & by_id
        found: dict[str, Match] = {}
        for client_id in sorted(candidates or ()):
            chart = view.released(client_id)
            if chart is None:
                continue
            for key, resource in chart.resources.items():
                if key not in found and query.matches(resource):
                    found[key] = Match(chart, resource)
            if wanted is not None and wanted <= found.keys():
                break  # every key the _id list allows is found: other clients can add nothing
        return [found[key] for key in sorted(found)]


def _included(query: SearchQuery, window: Sequence[Match]) -> list[Match]:
    """The `_include` targets of the page, and each client's 2.32 notice when Part 2 data is in the page; only
    from the same client's released resources."""
    seen = {m.key for m in window}
    out: list[Match] = []

    def add(chart: ReleasedChart, key: str) -> None:
        if key not in seen and key in chart.resources:
            seen.add(key)
            out.append(Match(chart, chart.resources[key]))

    for match in window:
        for include in query.includes:
            for key in include.keys(match.resource):
                add(match.chart, key)
    for match in [*window, *out]:
        if match.chart.notice and carries_part2(match.resource):
            add(match.chart, match.chart.notice)
    return out


def _url(base: str, resource_type: str, params: Sequence[tuple[str, str]]) -> str:
    return f"{base}/{resource_type}" + (f"?{urlencode(params)}" if params else "")


def _entry(base: str, resource: Resource, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _searchset(total: int, links: list[dict[str, str]], entries: list[dict[str, Any]]) -> Resource:
    bundle: Resource = {"resourceType": "Bundle"}
    hwm = vocabulary().highest_confidentiality(
        {
            str(c.get("code"))
            for e in entries
            for c in (e["resource"].get("meta") or {}).get("security") or ()
            if c.get("system") == V3_CONFIDENTIALITY
        }
    )
    if hwm:  # the searchset's confidentiality is the highest of its entries' (HCS high-water mark)
        label = {"system": V3_CONFIDENTIALITY, "code": hwm, "display": vocabulary().confidentiality_display[hwm]}
        bundle["meta"] = {"security": [label]}
    bundle |= {"type": "searchset", "total": total, "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle
