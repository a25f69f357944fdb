"""Pull: bring partners' updates back, incrementally.

Per partner and resource type a cursor is stored durably. A pass searches ``_lastUpdated=ge<cursor>`` and follows
`next` links (on the partner's own server only: client.py). A resource's version is its ``meta.versionId``, else
its ``meta.lastUpdated``, else a hash of its body (:func:`version_key`): a page seen twice stores nothing twice,
and a partner that keeps no version ids still delivers every change.

Each page is taken in one transaction: every new version is stored as received with its source
(``sync_received``) together with what it maps to (``sync_referral_updates``, ``sync_pulled_records``), so a
crash never leaves a version counted as known whose effect was not applied. A malformed resource (an element of
the wrong shape where the pull reads it, an id or instant FHIR does not allow) is reported in
``PullReport.failures`` with its type, id and the problem, never its content, and skipped; the rest of its page
is taken. It is not stored, so a pass that reads it again reports it again.

The cursor moves only when the pass completes: a pass cut short is simply repeated. It moves to the newest
``meta.lastUpdated`` seen, but never past the instant the search started on the server (the first page's
``Bundle.meta.lastUpdated``, else its HTTP ``Date``): pages read one after the other are not a snapshot, and a
resource changed while they were read may have moved past a page boundary unseen. When a pass of several pages
sees a resource changed after the search started, the cursor stays where it was and the next pass reads the
window again. A partner that sends neither time gets the newest ``meta.lastUpdated`` seen. ``ge``, not ``gt``:
resources sharing the cursor's instant are never skipped; they are recognized by version.

What the clinic's model has a place for is mapped back (pulled.py, pure):

* Task -> the status of the clinic's referral (task_status.py: accepted, declined with its reason, completed ...);
* MedicationRequest -> a ``reported_medication`` record (prescribed outside the clinic);
* Condition with an ICD-10-CM code -> a ``diagnosis`` record.

References are to the partner's ids; a partner that assigns its own ids (conditional mode) holds the clinic's
Patients, ServiceRequests and Tasks under ids the ledger knows (``sync_deliveries.remote_id``): they are
translated back to the adapter's ids before they are looked up. Our own writes come back too (a partner's search
returns what we pushed): a resource whose version is the one the partner acknowledged to us is recognized and
skipped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import Engine, select

from adapter.fhir import dumps
from adapter.sync import ledger
from adapter.sync.client import FhirClient, Reply
from adapter.sync.plan import Key
from adapter.sync.pulled import (
    ClinicIndex,
    MalformedResourceError,
    instant_of,
    local_id,
    map_back,
    object_at,
    reference_id,
    version_key,
)
from adapter.sync.retry import Failure
from adapter.sync.store import cursors, deliveries, pulled_records, received, referral_updates, upsert

STRICT = {"Prefer": "handling=strict"}
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 `id`
_IN_BATCH = 400  # ids per IN (...) list


@dataclass
class PullReport:
    partner_id: str
    fetched: dict[str, int] = field(default_factory=dict)  # per type, new versions stored
    own: int = 0  # our own writes echoed back
    referral_updates: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # clinic records mapped from partner data (stored)
    not_mapped: int = 0  # stored as received; the clinic's model has no place for them
    # One line each, no content: a search that failed, a malformed resource skipped, a Task to review.
    failures: list[str] = field(default_factory=list)


# --- cursor --------------------------------------------------------------------------------------------------


def cursor(engine: Engine, partner_id: str, resource_type: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(
            select(cursors.c.last_updated).where(
                cursors.c.partner_id == partner_id, cursors.c.resource_type == resource_type
            )
        )


def _set_cursor(engine: Engine, partner_id: str, resource_type: str, value: str, now: float) -> None:
    row = {"partner_id": partner_id, "resource_type": resource_type, "last_updated": value, "updated_at": now}
    with engine.begin() as conn:
        upsert(conn, cursors, [row], ["last_updated", "updated_at"])


def search_started(page: Reply) -> tuple[str, datetime, timedelta] | None:
    """When the server ran the search, from its first page: ``Bundle.meta.lastUpdated``, else the ``Date``
    header (whole seconds, so the true instant lies up to a second later). None when the partner sends neither."""
    meta = page.resource().get("meta")
    stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
    at = instant_of(stamp)
    if isinstance(stamp, str) and at is not None:
        return stamp, at, timedelta(0)
    try:
        dated = parsedate_to_datetime(page.headers.get("date") or "")
    except (TypeError, ValueError):
        return None
    if dated.tzinfo is None:
        return None
    dated = dated.astimezone(UTC)
    return dated.strftime("%Y-%m-%dT%H:%M:%SZ"), dated, timedelta(seconds=1)


@dataclass
class _Window:
    """What one pass saw of the partner's timeline; :meth:`next_cursor` says where the next pass starts."""

    since: str | None
    pages: int = 0
    started: tuple[str, datetime, timedelta] | None = None
    newest: tuple[str, datetime] | None = None
    changed: bool = False  # a resource changed after the search started was seen

    def page(self, reply: Reply) -> None:
        self.pages += 1
        if self.pages == 1:
            self.started = search_started(reply)

    def saw(self, resources: Iterable[Mapping[str, Any]]) -> None:
        for r in resources:
            meta = r.get("meta")
            stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
            at = instant_of(stamp)
            if not isinstance(stamp, str) or at is None:
                continue
            if self.newest is None or at > self.newest[1]:
                self.newest = (stamp, at)
            if self.started is not None and at >= self.started[1] + self.started[2]:
                self.changed = True

    def next_cursor(self) -> str | None:
        """The new cursor, or None to leave it where it is."""
        if self.newest is None:
            return None
        text, at = self.newest
        if self.started is not None:
            if self.changed and self.pages > 1:
                return None  # pages may have shifted under the pass: read the window again
            if at > self.started[1]:
                text, at = self.started[0], self.started[1]
        since_at = instant_of(self.since)
        if since_at is not None and at <= since_at:
            return None
        return text


# --- the pass ------------------------------------------------------------------------------------------------


def _search_pages(client: FhirClient, resource_type: str, since: str | None) -> Any:
    params = {"_count": str(client.partner.page_size)}
    if since:
        params["_lastUpdated"] = f"ge{since}"
    return client.search_pages(resource_type, params, headers=STRICT)


def pull(
    client: FhirClient,
    engine: Engine,
    index: ClinicIndex,
    *,
    clock: Callable[[], float] = time.time,
) -> PullReport:
    """One incremental pass over every type the partner's `pull` names."""
    partner = client.partner
    report = PullReport(partner.id)
    for rtype in partner.pull:
        since = cursor(engine, partner.id, rtype)
        window = _Window(since)
        fetched = 0
        complete = True
        for page in _search_pages(client, rtype, since):
            if isinstance(page, Failure):
                report.failures.append(f"{rtype}: {page.reason}")
                complete = False
                break
            batch = _matches(page, rtype, report)
            if batch is None:
                complete = False
                break
            window.page(page)
            window.saw(batch)
            fetched += _take(engine, partner.id, partner.base_url, batch, index, report, clock())
        report.fetched[rtype] = fetched  # new versions only: a page seen again brings nothing
        moved_to = window.next_cursor() if complete else None
        if moved_to is not None:
            _set_cursor(engine, partner.id, rtype, moved_to, clock())
    return report


def _matches(page: Reply, rtype: str, report: PullReport) -> list[dict[str, Any]] | None:
    """The page's matches of `rtype`; None (reported) when the page is not a searchset Bundle at all."""
    bundle = page.resource()
    entries = bundle.get("entry") or []
    if bundle.get("resourceType") != "Bundle" or not isinstance(entries, list):
        report.failures.append(f"{rtype}: a search page is not a Bundle with an entry array; the pass is repeated")
        return None
    out = []
    for n, e in enumerate(entries):
        r = e.get("resource") if isinstance(e, dict) else None
        search = e.get("search") if isinstance(e, dict) else None
        mode = search.get("mode", "match") if isinstance(search, dict) else "match"
        if not isinstance(r, dict) or r.get("resourceType") != rtype or mode != "match":
            continue
        rid = r.get("id")
        if not isinstance(rid, str) or not _FHIR_ID.fullmatch(rid):
            report.failures.append(f"{rtype} at entry {n}: skipped, its id is missing or not a FHIR id")
            continue
        out.append(r)
    return out


def _take(
    engine: Engine,
    partner_id: str,
    source: str,
    batch: Sequence[dict[str, Any]],
    index: ClinicIndex,
    report: PullReport,
    now: float,
) -> int:
    """Store a page's new versions with what they map to, in one transaction; returns how many were stored."""
    keyed: list[tuple[dict[str, Any], str]] = []
    for r in batch:
        try:
            keyed.append((r, version_key(r)))
        except MalformedResourceError as exc:
            _skipped(report, r, str(exc))
    known = _known_versions(engine, partner_id, keyed)
    fresh: list[tuple[dict[str, Any], str]] = []
    for r, version in keyed:
        if (r["resourceType"], r["id"], version) not in known:
            known.add((r["resourceType"], r["id"], version))  # the same version twice on one page
            fresh.append((r, version))
    if not fresh:
        return 0
    ours = _adapter_ids(engine, partner_id, [k for r, _v in fresh for k in _partner_keys(r)])
    echoed = _echoes(engine, partner_id, [r for r, _v in fresh], ours)
    rows: dict[str, list[dict[str, Any]]] = {"received": [], "updates": [], "records": []}
    effects: list[tuple[Mapping[str, Any], str, dict[str, Any] | None]] = []
    for r, version in fresh:
        rtype = r["resourceType"]
        try:
            effect = ("own", None) if (rtype, r["id"]) in echoed else map_back(r, index, partner_id, ours)
            rows["received"].append(_received_row(partner_id, source, r, version, now))
        except MalformedResourceError as exc:
            _skipped(report, r, str(exc))
            continue
        except (TypeError, AttributeError, LookupError, ValueError) as exc:  # a shape the checks above missed
            _skipped(report, r, f"could not be read ({type(exc).__name__})")
            continue
        kind, value = effect
        base = {"partner_id": partner_id, "received_at": now}
        if kind == "referral" and value is not None:
            rows["updates"].append({**base, **value})
        elif kind == "record" and value is not None:
            rows["records"].append(
                {
                    **base,
                    "resource_type": rtype,
                    "remote_id": r["id"],
                    "version_id": version,
                    "kind": value["kind"],
                    "record_id": value["id"],
                    "client_id": value["client"],
                    "record": json.dumps(value, sort_keys=True),
                }
            )
        effects.append((r, kind, value))
    with engine.begin() as conn:
        upsert(conn, received, rows["received"], ["last_updated", "source", "body"])
        upsert(
            conn, referral_updates, rows["updates"], ["status", "task_status", "reason", "changed_at", "received_at"]
        )
        upsert(conn, pulled_records, rows["records"], ["kind", "record_id", "client_id", "record", "received_at"])
    for source_resource, kind, value in effects:  # reported only once stored
        if kind == "review" and value is not None:
            ref = f"{source_resource['resourceType']}/{source_resource['id']}"
            report.failures.append(f"{ref}: needs review: {value['problem']}")
        elif kind == "own":
            report.own += 1
        elif kind == "referral" and value is not None:
            report.referral_updates.append(value)
        elif kind == "record" and value is not None:
            report.records.append(value)
        elif kind == "none":
            report.not_mapped += 1
    return len(rows["received"])


def _skipped(report: PullReport, r: Mapping[str, Any], problem: str) -> None:
    report.failures.append(f"{r['resourceType']}/{r['id']}: skipped, malformed: {problem}")


def _received_row(partner_id: str, source: str, r: Mapping[str, Any], version: str, now: float) -> dict[str, Any]:
    meta = object_at(r, "meta", r["resourceType"])
    origin = source + (f" ({meta['source']})" if meta.get("source") else "")
    stamp = meta.get("lastUpdated")
    return {
        "partner_id": partner_id,
        "resource_type": r["resourceType"],
        "remote_id": r["id"],
        "version_id": version,
        "last_updated": stamp if instant_of(stamp) is not None else None,
        "source": origin[:500],
        "body": dumps(r).decode(),
        "received_at": now,
    }


def _known_versions(
    engine: Engine, partner_id: str, keyed: Sequence[tuple[Mapping[str, Any], str]]
) -> set[tuple[str, str, str]]:
    by_type: dict[str, list[str]] = {}
    for r, _version in keyed:
        by_type.setdefault(r["resourceType"], []).append(r["id"])
    known: set[tuple[str, str, str]] = set()
    with engine.connect() as conn:
        for rtype, ids in by_type.items():
            for start in range(0, len(ids), _IN_BATCH):
                stmt = select(received.c.remote_id, received.c.version_id).where(
                    received.c.partner_id == partner_id,
                    received.c.resource_type == rtype,
                    received.c.remote_id.in_(ids[start : start + _IN_BATCH]),
                )
                known |= {(rtype, row.remote_id, row.version_id) for row in conn.execute(stmt)}
    return known


def _partner_keys(r: Mapping[str, Any]) -> list[Key]:
    """The partner's ids a resource carries that may stand for the adapter's: its own, its subject, its focus."""
    keys: list[Key] = [(r["resourceType"], r["id"])]
    candidates = [(r.get("subject"), "Patient"), (r.get("for"), "Patient"), (r.get("focus"), "ServiceRequest")]
    based_on = r.get("basedOn")
    candidates += [(ref, "ServiceRequest") for ref in (based_on if isinstance(based_on, list) else [])]
    for ref, rtype in candidates:
        try:
            rid = reference_id(ref if isinstance(ref, dict) else {}, rtype, "")
        except MalformedResourceError:
            continue  # reported when the mapping reads it
        if rid:
            keys.append((rtype, rid))
    return keys


def _adapter_ids(engine: Engine, partner_id: str, keys: Sequence[Key]) -> dict[Key, str]:
    """(type, partner's id) -> the adapter's id, for resources the partner holds under its own id (the ledger)."""
    by_type: dict[str, set[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, set()).add(rid)
    found: dict[Key, str] = {}
    with engine.connect() as conn:
        for rtype, id_set in by_type.items():
            ids = sorted(id_set)
            for start in range(0, len(ids), _IN_BATCH):
                stmt = select(deliveries.c.resource_id, deliveries.c.remote_id).where(
                    deliveries.c.partner_id == partner_id,
                    deliveries.c.resource_type == rtype,
                    deliveries.c.remote_id.in_(ids[start : start + _IN_BATCH]),
                )
                for row in conn.execute(stmt):
                    if row.remote_id != row.resource_id:
                        found[(rtype, row.remote_id)] = row.resource_id
    return found


def _echoes(
    engine: Engine, partner_id: str, resources: Sequence[Mapping[str, Any]], ours: Mapping[Key, str]
) -> set[Key]:
    """The (type, partner's id) of our own writes echoed back: the version the partner acknowledged to us."""
    local = {(r["resourceType"], local_id(r["resourceType"], r["id"], ours)): r for r in resources}
    out: set[Key] = set()
    for key, d in ledger.lookup(engine, partner_id, list(local)).items():
        r = local[key]
        meta = r.get("meta")
        version = meta.get("versionId") if isinstance(meta, dict) else None
        if d.version_id and isinstance(version, str) and d.version_id == version:
            out.add((r["resourceType"], r["id"]))
    return out


# --- what was pulled -----------------------------------------------------------------------------------------


def referral_updates_of(engine: Engine, partner_id: str | None = None) -> list[dict[str, Any]]:
    """Every referral status change pulled so far, oldest first."""
    stmt = select(referral_updates).order_by(referral_updates.c.received_at)
    if partner_id is not None:
        stmt = stmt.where(referral_updates.c.partner_id == partner_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def pulled_records_of(engine: Engine, partner_id: str | None = None, *, latest: bool = True) -> list[dict[str, Any]]:
    """The clinic records mapped from partners' resources (``sync_pulled_records``), oldest first, each row with
    its ``record`` parsed. With `latest`, only the newest version of each record id (a partner's later version
    of the same resource supersedes the earlier one)."""
    stmt = select(pulled_records).order_by(pulled_records.c.received_at, pulled_records.c.version_id)
    if partner_id is not None:
        stmt = stmt.where(pulled_records.c.partner_id == partner_id)
    with engine.connect() as conn:
        rows = [{**dict(r._mapping), "record": json.loads(r.record)} for r in conn.execute(stmt)]
    if not latest:
        return rows
    newest = {r["record_id"]: r for r in rows}
    return [r for r in rows if newest[r["record_id"]] is r]


def received_of(engine: Engine, partner_id: str, resource_type: str) -> list[dict[str, Any]]:
    stmt = select(received).where(received.c.partner_id == partner_id, received.c.resource_type == resource_type)
    with engine.connect() as conn:
        return [{**dict(r._mapping), "body": json.loads(r.body)} for r in conn.execute(stmt)]
