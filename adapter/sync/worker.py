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
            claimed = outbox.claim(
                self.engine, self.owner, self.clock(), lease_s=self.lease_s, partner_ids=active, exclude=seen
            )
            if not claimed:
                break
            for item in claimed:
                seen.append(item.id)
                report = self.process(item, summaries[item.partner_id])
                if report is not None and report.failure is not None and report.failure.kind == "auth":
                    active.remove(item.partner_id)  # every other item would be refused the same way
                if self.on_item is not None:
                    self.on_item(item, report)
        return summaries

    def process(self, item: Item, summary: PartnerSummary) -> PushReport | None:
        pusher = self.pushers[item.partner_id]
        retry_cfg = pusher.client.partner.retry
        chart = self.charts(item.client_id)
        if chart is None and self.defer_missing:  # queued after this run read the store: the next run sends it
            outbox.defer(self.engine, item, self.clock())
            return None
        if chart is None:  # the client is gone from the records: nothing left to send
            outbox.complete(self.engine, item, self.clock(), "", {"note": "client not found in the records"})
            return None
        try:
            report = pusher.push(chart, self.release, item.id)
        except AdapterError as exc:  # the release point or the mapping refused: retry later, loudly
            # PHI discipline: at WARNING only the item, the partner and the error class; the rest at DEBUG.
            log.warning("outbox item %s for partner %s: %s", item.id, item.partner_id, type(exc).__name__)
            log.debug("outbox item %s (client %s): %s", item.id, item.client_id, exc)
            summary.errors.append(f"item {item.id} client {item.client_id}: {exc}")
            outbox.reschedule(
                self.engine,
                item,
                self.clock(),
                next_attempt_at=self.clock() + item_backoff_s(retry_cfg, item.attempts, self.rng),
                max_attempts=retry_cfg.item_attempts,
                error=str(exc),
                status=None,
                outcome=None,
            )
            return None
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
