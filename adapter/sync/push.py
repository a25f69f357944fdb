"""Push one outbox item: release a client's chart for one partner and write what changed, idempotently.

1. ``release`` (the consent release point) decides what this partner may see; nothing else is ever sent.
2. Each released resource is hashed; what the partner already acknowledged with the same hash is
   *unchanged* and not sent again (a second full sync adds no versions).
3. The rest goes out in dependency order, in chunks, as PUTs to the adapter's ids (``client-ids``) or as
   conditional updates/creates on business identifiers (``conditional``), in transaction or batch Bundles or
   one request per resource.
4. Before a request leaves, its resources are marked ``sending`` (committed). After an ambiguous failure
   (timeout, reset mid-response, 5xx), a 409/412, or a crash, the partner's copy is re-read first and
   whatever already arrived is not sent again: delivery is at-least-once, writes are idempotent, and
   versions are not duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from adapter.bulk import collector_paused
from adapter.errors import AdapterError
from adapter.fhir import Resource, dumps
from adapter.pipeline import MappedChart
from adapter.sync import ledger
from adapter.sync.client import FhirClient, Reply
from adapter.sync.ledger import Mark
from adapter.sync.plan import (
    Entry,
    EntryResult,
    IdMode,
    Key,
    Match,
    Request,
    bundle_bytes,
    client_id_request,
    conditional_request,
    content_hash,
    dependency_groups,
    entry,
    match_for,
    packed_chunks,
    parse_location,
    ref_key,
    references,
    response_entries,
    same_content,
    with_match,
)
from adapter.sync.release import Released, ReleaseFn, Withheld, release_batch
from adapter.sync.retry import AUTH_STATUSES, CONFLICT_STATUSES, RETRYABLE_STATUSES, Failure, outcome_text
from adapter.sync.task_status import keep_partner_status

WriteMode = Literal["transaction", "batch", "single"]
STRICT = {"Prefer": "handling=strict"}  # sekmet and HAPI ignore an unknown search parameter without it


@dataclass(frozen=True)
class Rejected:
    ref: str
    status: int | None
    reason: str
    outcome: dict[str, Any] | None


@dataclass
class PushReport:
    sent: int = 0
    unchanged: int = 0
    withheld: list[Withheld] = field(default_factory=list)
    not_pushed: int = 0  # types the partner does not take (partners file `push`)
    failed: int = 0  # still to send after the retries: the item runs again later
    rejected: list[Rejected] = field(default_factory=list)  # refused for good: the item goes dead
    failure: Failure | None = None  # why resources are still to send
    content_hash: str = ""

    @property
    def dead(self) -> int:
        return len(self.rejected)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "unchanged": self.unchanged,
            "withheld": [{"ref": w.ref, "reason": w.reason} for w in self.withheld],
            "not_pushed": self.not_pushed,
            "failed": self.failed,
            "dead": self.dead,
            "rejected": [
                {"ref": r.ref, "status": r.status, "reason": r.reason, "outcome": r.outcome} for r in self.rejected
            ],
        }


@dataclass
class Pusher:
    """Everything needed to push to one partner (one per partner per worker)."""

    client: FhirClient
    engine: Any  # sqlalchemy Engine
    write_mode: WriteMode
    id_mode: IdMode
    id_system: str  # <BH_FHIR_BASE>/sid/resource-id: the match key of resources without a business identifier
    can_search: Callable[[str, str], bool] = lambda _type, _param: True
    allows_update_create: Callable[[str], bool] = lambda _type: True
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.write_mode == "batch" and self.id_mode == "conditional":
            # Batch entries cannot reference each other's urn:uuid fullUrls: one by one, in dependency order.
            self.write_mode = "single"

    def match(self, e: Entry) -> Match | None:
        """The conditional-mode match key; None when the partner can search nothing that identifies it."""
        return match_for(e.resource, self.id_system, self.can_search)

    @property
    def partner_id(self) -> str:
        return self.client.partner.id

    # --- items -----------------------------------------------------------------------------------------------
    def push(self, chart: MappedChart, release: ReleaseFn, item_id: int | None = None) -> PushReport:
        """One outbox item (one client's chart). Raises AdapterError when the release point refuses."""
        (result,) = self.push_batch([(item_id, chart)], release)
        if isinstance(result, AdapterError):
            raise result
        return result

    def push_batch(
        self, work: Sequence[tuple[int | None, MappedChart]], release: ReleaseFn
    ) -> list[PushReport | AdapterError]:
        """Several items at once: each chart goes through the release point on its own, then what they release
        travels in shared Bundles with one ledger transaction per step, instead of one set per client. A resource
        several charts release (a clinician, the clinic) is sent once and its outcome is every such item's.
        Returns one report per item, in order, or the AdapterError that kept its chart from being released."""
        with collector_paused():  # adapter/bulk.py: a batch builds short-lived acyclic data by the thousand
            return self._push_batch(work, release)

    def _push_batch(
        self, work: Sequence[tuple[int | None, MappedChart]], release: ReleaseFn
    ) -> list[PushReport | AdapterError]:
        partner = self.client.partner
        instant = datetime.fromtimestamp(self.clock(), UTC)
        results: list[PushReport | AdapterError] = []
        batch = _Batch()
        staged: list[tuple[PushReport, list[Entry]]] = []
        releases: list[tuple[int | None, Released | AdapterError]] = []
        try:
            with release_batch(release):  # the audit of every release is durable before anything is sent
                for item_id, chart in work:
                    try:
                        releases.append((item_id, release(chart, partner, instant)))
                    except AdapterError as exc:
                        releases.append((item_id, exc))
        except AdapterError as exc:  # the batch's audit could not be written: none of it may go
            return [exc for _ in work]
        for item_id, released in releases:
            if isinstance(released, AdapterError):
                results.append(released)
                continue
            report = PushReport(withheld=list(released.withheld))
            wanted = with_part2_notice(
                released.resources, [r for r in released.resources if partner.pushes(r["resourceType"])]
            )
            report.not_pushed = len(released.resources) - len(wanted)
            entries = [entry(r) for r in wanted]
            report.content_hash = content_hash(entries)
            for e in entries:
                batch.want(e, report, item_id)
            staged.append((report, entries))
            results.append(report)
        groups = dependency_groups(list(batch.entries.values()))
        entries = [e for group in groups for e in group]
        with ledger.resource_locks(self.engine, self.partner_id, [e.key for e in entries]):
            known = ledger.lookup(self.engine, self.partner_id, [e.key for e in entries])
            todo: list[Entry] = []
            maybe_there: list[Entry] = []
            for e in entries:
                d = known.get(e.key)
                if d is not None and d.content_hash == e.content_hash and d.state == "sent":
                    batch.unchanged(e.key)
                elif d is not None and d.content_hash == e.content_hash and d.state == "sending":
                    maybe_there.append(e)
                else:
                    todo.append(e)
            if maybe_there:  # a crash or an unanswered request left these: read before sending again
                arrived = self.confirm(maybe_there, batch)  # the run that crashed sent them; this run completes it
                keep = {e.key for e in todo} | {e.key for e in maybe_there if e.key not in arrived}
                todo = [e for e in entries if e.key in keep]
            todo_keys = {e.key for e in todo}
            for report, mine in staged:
                sending = [e for e in mine if e.key in todo_keys]
                notices = [e for e in sending if is_notice(e.resource)]
                if notices and not any(carries_part2(e.resource) for e in sending if e not in notices):
                    # 42 CFR 2.32: the notice accompanies a disclosure of Part 2 data. Nothing of it is sent in
                    # this run (all unchanged), so there is no disclosure to accompany: a new notice is noise.
                    todo_keys -= {e.key for e in notices}
                    report.unchanged += len(notices)
            for e in [e for e in todo if e.key in todo_keys and self.unwritable(e)]:
                reason = (
                    f"partner declares no search by identifier or _tag for {e.key[0]} and no update-as-create:"
                    " it cannot be written idempotently"
                )
                batch.rejected(e, Rejected(e.ref, None, reason, None))
                todo_keys.discard(e.key)
            # A Task the partner already holds may carry its answer to the referral: keep it (task_status.py).
            sent_as = {
                e.key: self.with_partner_status(e) if e.key[0] == "Task" and e.key in known else e
                for e in todo
                if e.key in todo_keys
            }
            todo_groups = [g for g in ([sent_as[e.key] for e in group if e.key in sent_as] for group in groups) if g]
            self.deliver(todo_groups, batch)
        return results

    # --- sending ---------------------------------------------------------------------------------------------
    def chunk_size(self) -> int:
        partner = self.client.partner
        if self.write_mode == "single":
            return 1
        return partner.max_conditional_entries if self.id_mode == "conditional" else partner.max_entries

    def deliver(self, groups: Sequence[Sequence[Entry]], batch: _Batch) -> None:
        chunks = list(packed_chunks(groups, self.chunk_size()))
        for n, chunk in enumerate(chunks):
            left = self.deliver_chunk(chunk, batch)
            if left:
                # The partner is unreachable or overloaded: keep the rest for the items' next run.
                batch.failed([*left, *(e for c in chunks[n + 1 :] for e in c)])
                return

    def deliver_chunk(self, chunk: list[Entry], batch: _Batch) -> list[Entry]:
        """Send one chunk under the retry policy; returns what is still unsent after the retries."""
        state = _ChunkState(pending=list(chunk))

        def attempt() -> Failure | None:
            if state.reread:
                arrived = self.confirm(state.pending, batch)
                state.pending = [e for e in state.pending if e.key not in arrived]
                state.reread = False
            if not state.pending:
                return None
            return self.send_round(state, batch)

        result = self.client.retrying()(attempt)
        if isinstance(result, Failure):
            batch.failure(state.pending, result)
        return state.pending

    def send_round(self, state: _ChunkState, batch: _Batch) -> Failure | None:
        pending = state.pending
        ledger.record(self.engine, self.partner_id, "sending", [batch.mark(e) for e in pending], self.clock())
        outcomes = self.send(pending)
        retry_later: list[Entry] = []
        conflicts: list[Entry] = []
        last_failure: Failure | None = None
        sent: list[Mark] = []
        for e, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, EntryResult) and 200 <= outcome.status < 300:
                sent.append(batch.mark(e, outcome.remote_id, outcome.version_id))
                continue
            failure = outcome if isinstance(outcome, Failure) else _entry_failure(outcome)
            last_failure = failure
            if failure.kind == "conflict" and not state.conflict_retried:
                conflicts.append(e)
            elif failure.retryable or failure.kind == "auth":
                retry_later.append(e)
                state.reread = state.reread or failure.ambiguous
            else:
                batch.rejected(e, Rejected(e.ref, failure.status, failure.reason, failure.outcome))
                ledger.record(self.engine, self.partner_id, "rejected", [batch.mark(e)], self.clock())
        ledger.record(self.engine, self.partner_id, "sent", sent, self.clock())
        batch.sent(m.key for m in sent)
        if conflicts:
            # 409/412: someone else changed it, or the match is ambiguous. Re-read, then send once more.
            state.conflict_retried = True
            arrived = self.confirm(conflicts, batch)
            again = [e for e in conflicts if e.key not in arrived]
            if again:
                state.pending = again
                follow_up = self.send_round(state, batch)
                retry_later += state.pending
                last_failure = follow_up or last_failure
        state.pending = retry_later
        if retry_later:
            assert last_failure is not None  # noqa: S101 - something failed for them to be left
            if last_failure.retryable or last_failure.kind == "auth":  # auth: not retried here, the item runs later
                return last_failure
            return Failure("retryable", last_failure.reason, last_failure.status, last_failure.outcome)
        return None

    def requests_for(self, entries: Sequence[Entry], in_transaction: bool) -> list[Request]:
        if self.id_mode == "client-ids":
            return [client_id_request(e) for e in entries]
        refs = ledger.remote_refs(self.engine, self.partner_id, _referenced(entries))
        if in_transaction:  # inside one transaction, urn:uuid fullUrls resolve: the partner rewrites them
            refs.update({e.ref: f"urn:uuid:{e.resource['id']}" for e in entries})
        requests = []
        for e in entries:
            match = self.match(e)
            # Not searchable at this partner: its own id is the only idempotent key left (checked in push()).
            requests.append(client_id_request(e) if match is None else conditional_request(e, match, refs))
        return requests

    def unwritable(self, e: Entry) -> bool:
        """Conditional mode, yet the partner can neither search this type by a key nor accept our id."""
        return self.id_mode == "conditional" and self.match(e) is None and not self.allows_update_create(e.key[0])

    def send(self, entries: Sequence[Entry]) -> list[EntryResult | Failure]:
        """One round: every entry's result (a whole-Bundle failure is every entry's failure)."""
        if self.write_mode == "single":
            return [self.send_one(e) for e in entries]
        bundle_type = self.write_mode
        requests = self.requests_for(entries, in_transaction=bundle_type == "transaction")
        reply = self.client.once("POST", "", content=bundle_bytes(bundle_type, entries, requests))
        if isinstance(reply, Failure):
            return [reply] * len(entries)
        return _bundle_results(reply, len(entries))

    def send_one(self, e: Entry) -> EntryResult | Failure:
        (req,) = self.requests_for([e], in_transaction=False)
        headers = {"If-None-Exist": req.if_none_exist} if req.if_none_exist else None
        reply = self.client.once(req.method, req.url, content=req.body, headers=headers)
        if isinstance(reply, Failure):
            return reply
        body = reply.resource()
        rid, version = parse_location(reply.headers.get("location") or reply.headers.get("content-location"))
        meta = body.get("meta") or {}
        return EntryResult(reply.status, body.get("id") or rid, meta.get("versionId") or version)

    def with_partner_status(self, e: Entry) -> Entry:
        """The entry to send for a Task the partner holds: ours, with the partner's status when its answer
        stands. The content hash stays that of our mapping, so an unchanged referral is not re-sent."""
        sent = keep_partner_status(e.resource, self.read_partner_copy(e))
        return e if sent is e.resource else Entry(sent, dumps(sent), e.content_hash)

    # --- re-reading --------------------------------------------------------------------------------------
    def confirm(self, entries: Sequence[Entry], batch: _Batch | None = None) -> set[Key]:
        """The entries whose content the partner already holds (recorded as sent, and counted in `batch`)."""
        batch = batch or _Batch.of(entries)
        arrived: list[Mark] = []
        for e in entries:
            stored = self.read_partner_copy(e)
            if stored is None:
                continue
            match = self.match(e) if self.id_mode == "conditional" else None
            if match is None:
                ok = same_content(e.resource, stored)
            else:
                ok = same_content(with_match(e.resource, match), stored, ignore_refs=True)
            if ok:
                meta = stored.get("meta") or {}
                arrived.append(batch.mark(e, stored.get("id"), meta.get("versionId")))
        ledger.record(self.engine, self.partner_id, "sent", arrived, self.clock())
        batch.sent(m.key for m in arrived)
        return {m.key for m in arrived}

    def read_partner_copy(self, e: Entry) -> dict[str, Any] | None:
        rtype, rid = e.key
        match = self.match(e) if self.id_mode == "conditional" else None
        if match is None:
            reply = self.client.call("GET", f"{rtype}/{rid}")
            return reply.resource() if isinstance(reply, Reply) else None
        # httpx URL-encodes params: the value is only FHIR-escaped (an MRN "12,34" is not "12" OR "34").
        reply = self.client.call("GET", rtype, params={match.param: match.search_value()}, headers=STRICT)
        if not isinstance(reply, Reply):
            return None
        found = [
            x["resource"]
            for x in reply.resource().get("entry", []) or []
            if (x.get("search") or {}).get("mode", "match") == "match" and "resource" in x
        ]
        return found[0] if len(found) == 1 else None


NOTICE_IDENTIFIER_SUFFIX = "/sid/disclosure-notice"  # adapter/consent/enforce.py: the 2.32 notice's identifier
PART2_LABEL = ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "42CFRPart2")


def is_notice(resource: dict[str, Any]) -> bool:
    """The consent engine's 42 CFR 2.32 redisclosure notice (a DocumentReference minted per disclosure)."""
    if resource.get("resourceType") != "DocumentReference":
        return False
    return any(str(i.get("system", "")).endswith(NOTICE_IDENTIFIER_SUFFIX) for i in resource.get("identifier", []))


def carries_part2(resource: dict[str, Any]) -> bool:
    return any(
        (c.get("system"), c.get("code")) == PART2_LABEL for c in (resource.get("meta") or {}).get("security", [])
    )


def with_part2_notice(released: Sequence[Resource], wanted: list[Resource]) -> list[Resource]:
    """42 CFR 2.32: Part 2 data travels with its redisclosure notice and the copies of the consents the notice
    names, whatever resource types the partner's `push` list selects."""
    if not any(carries_part2(r) for r in wanted):
        return wanted
    chosen = {(r["resourceType"], r["id"]) for r in wanted}
    notices = [r for r in released if is_notice(r)]
    consents = {ref for n in notices for ref in references(n) if ref.startswith("Consent/")}
    extra = [
        r
        for r in released
        if (r["resourceType"], r["id"]) not in chosen and (is_notice(r) or f"{r['resourceType']}/{r['id']}" in consents)
    ]
    return wanted + extra


@dataclass
class _Batch:
    """Who wants each entry of a push: the items (their reports) whose charts released it. The first is its
    owner (its item id goes on the ledger); every one of them shares its outcome."""

    entries: dict[Key, Entry] = field(default_factory=dict)  # the first Entry per key, in release order
    reports: dict[Key, list[PushReport]] = field(default_factory=dict)
    owner_item: dict[Key, int | None] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Sequence[Entry]) -> _Batch:
        """A batch for entries nobody reports on (a re-read outside a push)."""
        batch = cls()
        for e in entries:
            batch.entries.setdefault(e.key, e)
            batch.reports.setdefault(e.key, [])
        return batch

    def want(self, e: Entry, report: PushReport, item_id: int | None) -> None:
        if e.key not in self.entries:
            self.entries[e.key] = e
            self.owner_item[e.key] = item_id
        wanting = self.reports.setdefault(e.key, [])
        if report not in wanting:
            wanting.append(report)

    def mark(self, e: Entry, remote_id: str | None = None, version_id: str | None = None) -> Mark:
        return Mark(e.key, e.content_hash, remote_id, version_id, self.owner_item.get(e.key))

    def unchanged(self, key: Key) -> None:
        for report in self.reports.get(key, ()):
            report.unchanged += 1

    def sent(self, keys: Iterable[Key]) -> None:
        """Sent now: by the owner; the other items that released it find it there (unchanged for them)."""
        for key in keys:
            for n, report in enumerate(self.reports.get(key, ())):
                if n == 0:
                    report.sent += 1
                else:
                    report.unchanged += 1

    def failed(self, entries: Iterable[Entry]) -> None:
        for e in entries:
            for report in self.reports.get(e.key, ()):
                report.failed += 1

    def failure(self, entries: Iterable[Entry], failure: Failure) -> None:
        for e in entries:
            for report in self.reports.get(e.key, ()):
                report.failure = failure

    def rejected(self, e: Entry, rejected: Rejected) -> None:
        for report in self.reports.get(e.key, ()):
            report.rejected.append(rejected)


@dataclass
class _ChunkState:
    pending: list[Entry]
    reread: bool = False
    conflict_retried: bool = False


def _entry_failure(result: EntryResult | Failure) -> Failure:
    if isinstance(result, Failure):
        return result
    reason = f"HTTP {result.status}" + (f": {outcome_text(result.outcome)}" if result.outcome else "")
    if result.status in RETRYABLE_STATUSES or result.status >= 500 or result.status == 0:
        return Failure("retryable", reason, result.status, result.outcome, ambiguous=result.status != 429)
    if result.status in CONFLICT_STATUSES:
        return Failure("conflict", reason, result.status, result.outcome)
    if result.status in AUTH_STATUSES:  # as for a whole request (retry.py): our credentials, not this resource
        return Failure("auth", reason, result.status, result.outcome)
    return Failure("permanent", reason, result.status, result.outcome)


def _bundle_results(reply: Reply, count: int) -> list[EntryResult | Failure]:
    body = reply.resource()
    if body.get("resourceType") != "Bundle":
        failure = Failure(
            "retryable", f"HTTP {reply.status}: the answer to a Bundle is not a Bundle", reply.status, ambiguous=True
        )
        return [failure] * count
    return list(response_entries(body, count))


def _referenced(entries: Sequence[Entry]) -> list[Key]:
    keys = {k for e in entries for r in references(e.resource) if (k := ref_key(r)) is not None}
    return sorted(keys)
