"""The push worker: claim due outbox items one at a time, push each, record the outcome.

Several workers may run at once against one PostgreSQL outbox (claims skip locked rows; shared resources are
guarded by advisory locks in ledger.py). A worker that is killed leaves its item in-flight: the next worker on
the same host takes it back at start (its process is gone), any other after the lease expires, and the
``sending`` marks make it re-read before sending again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from adapter.errors import AdapterError
from adapter.pipeline import MappedChart
from adapter.sync import outbox
from adapter.sync.outbox import Item
from adapter.sync.push import Pusher, PushReport
from adapter.sync.release import ReleaseFn, Withheld
from adapter.sync.retry import item_backoff_s

log = logging.getLogger(__name__)

ChartSource = Callable[[str], MappedChart | None]


@dataclass
class PartnerSummary:
    partner_id: str
    items: int = 0
    sent: int = 0
    unchanged: int = 0
    failed: int = 0
    dead: int = 0
    withheld: list[tuple[str, Withheld]] = field(default_factory=list)  # (client id, what and why)
    errors: list[str] = field(default_factory=list)  # one line per item that did not complete

    def add(self, client_id: str, report: PushReport) -> None:
        self.items += 1
        self.sent += report.sent
        self.unchanged += report.unchanged
        self.failed += report.failed
        self.dead += report.dead
        self.withheld += [(client_id, w) for w in report.withheld]


@dataclass
class Worker:
    engine: Engine
    pushers: Mapping[str, Pusher]
    charts: ChartSource
    release: ReleaseFn
    owner: str = field(default_factory=outbox.worker_name)
    lease_s: float = 300.0
    clock: Callable[[], float] = time.time
    on_item: Callable[[Item, PushReport | None], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    # True when the charts are a snapshot of the record store: an item for a client the snapshot lacks was queued
    # by an ingest after it was taken, and waits for the next run (never completed unsent).
    defer_missing: bool = False
    # Items pushed together: their resources share Bundles and ledger transactions (Pusher.push_batch).
    batch_items: int = 8
    _started: bool = False

    def run_once(
        self, partner_ids: Sequence[str] | None = None, max_items: int | None = None
    ) -> dict[str, PartnerSummary]:
        """Drain every due item of the partners (all by default); items rescheduled for later stay queued."""
        if not self._started:
            outbox.release_dead_owners(self.engine, self.clock())
            self._started = True
        active = [p for p in (partner_ids or list(self.pushers)) if p in self.pushers]
        summaries = {p: PartnerSummary(p) for p in active}
        seen: list[int] = []
        while active and (max_items is None or len(seen) < max_items):
            limit = self.batch_items if max_items is None else max(1, min(self.batch_items, max_items - len(seen)))
            claimed = outbox.claim(
                self.engine,
                self.owner,
                self.clock(),
                limit=limit,
                lease_s=self.lease_s,
                partner_ids=active,
                exclude=seen,
            )
            if not claimed:
                break
            seen += [item.id for item in claimed]
            by_partner: dict[str, list[Item]] = {}
            for item in claimed:
                by_partner.setdefault(item.partner_id, []).append(item)
            for partner_id, items in by_partner.items():
                for item, report in self.process(items, summaries[partner_id]):
                    refused = report is not None and report.failure is not None and report.failure.kind == "auth"
                    if refused and partner_id in active:
                        active.remove(partner_id)  # every other item would be refused the same way
                    if self.on_item is not None:
                        self.on_item(item, report)
        return summaries

    def process(self, items: Sequence[Item], summary: PartnerSummary) -> list[tuple[Item, PushReport | None]]:
        """Push one partner's claimed items together (pusher.push_batch) and record each item's outcome."""
        pusher = self.pushers[items[0].partner_id]
        done: list[tuple[Item, PushReport | None]] = []
        work: list[tuple[Item, MappedChart]] = []
        for item in items:
            chart = self.charts(item.client_id)
            if chart is None and self.defer_missing:  # queued after this run read the store: the next run sends it
                outbox.defer(self.engine, item, self.clock())
                done.append((item, None))
            elif chart is None:  # the client is gone from the records: nothing left to send
                outbox.complete(self.engine, item, self.clock(), "", {"note": "client not found in the records"})
                done.append((item, None))
            else:
                work.append((item, chart))
        results = pusher.push_batch([(item.id, chart) for item, chart in work], self.release) if work else []
        for (item, _chart), result in zip(work, results, strict=True):
            done.append((item, self.record(item, result, pusher, summary)))
        return done

    def record(
        self, item: Item, result: PushReport | AdapterError, pusher: Pusher, summary: PartnerSummary
    ) -> PushReport | None:
        """One item's outcome in the outbox: complete, rescheduled (failed, later dead) or buried (dead)."""
        retry_cfg = pusher.client.partner.retry
        if isinstance(result, AdapterError):  # the release point or the mapping refused: retry later, loudly
            # PHI discipline: at WARNING only the item, the partner and the error class; the rest at DEBUG.
            log.warning("outbox item %s for partner %s: %s", item.id, item.partner_id, type(result).__name__)
            log.debug("outbox item %s (client %s): %s", item.id, item.client_id, result)
            summary.errors.append(f"item {item.id} client {item.client_id}: {result}")
            outbox.reschedule(
                self.engine,
                item,
                self.clock(),
                next_attempt_at=self.clock() + item_backoff_s(retry_cfg, item.attempts, self.rng),
                max_attempts=retry_cfg.item_attempts,
                error=str(result),
                status=None,
                outcome=None,
            )
            return None
        report = result
        summary.add(item.client_id, report)
        now = self.clock()
        if report.rejected:
            first = report.rejected[0]
            error = f"{len(report.rejected)} resource(s) refused; first {first.ref}: {first.reason}"
            summary.errors.append(f"item {item.id} client {item.client_id}: {error}")
            outbox.bury(
                self.engine, item, now, error=error, status=first.status, outcome=first.outcome, report=report.as_json()
            )
        elif report.failed:
            failure = report.failure
            error = failure.reason if failure else "not all resources were sent"
            state = outbox.reschedule(
                self.engine,
                item,
                now,
                next_attempt_at=now + item_backoff_s(retry_cfg, item.attempts, self.rng),
                max_attempts=retry_cfg.item_attempts,
                error=error,
                status=failure.status if failure else None,
                outcome=failure.outcome if failure else None,
                report=report.as_json(),
            )
            summary.errors.append(f"item {item.id} client {item.client_id}: {error} ({state})")
        else:
            outbox.complete(self.engine, item, now, report.content_hash, report.as_json())
        return report


def charts_by_client(charts: Sequence[MappedChart]) -> ChartSource:
    by_id = {c.client_id: c for c in charts}
    return by_id.get
