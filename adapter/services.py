"""What the API and the CLI share: settings, the database, the record store, the partners, the audit log, the clock.

One `Services` per process. Mapped charts are built on first use and cached until the next ingest changes the
store (its version counter lives in the database, so every process sees an ingest made by another). The clock is
injected: tests pass a fixed one, and no library code below reads the time itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from adapter.consent import AuditLog, SqlAuditLog
from adapter.consent.audit_store import audit_events
from adapter.errors import AdapterError, InputError, PartnerConfigError
from adapter.mappings.context import MappingContext
from adapter.pipeline import MappedChart, context, map_chart
from adapter.records.chart import Chart, Clinic
from adapter.records.loader import load_paths
from adapter.settings import Settings
from adapter.store.records import IngestReport, RecordStore, affected_clients
from adapter.store.requests import RequestLog
from adapter.store.tokens import TokenStore
from adapter.sync import outbox
from adapter.sync.partners import Partner, load_partners
from adapter.sync.store import normalize_url, open_store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock (aware, UTC). Only Services.open's default; everything else is handed a clock."""
    return datetime.now(UTC)


@dataclass
class _Mapped:
    """The charts of one store version, mapped lazily, one client at a time."""

    version: int
    clinic: Clinic
    ctx: MappingContext
    charts: dict[str, Chart]
    done: dict[str, MappedChart | AdapterError] = field(default_factory=dict)


@dataclass
class Services:
    """What the API and the CLI share: settings, the database, the partners, the audit log, the clock."""

    settings: Settings
    engine: Engine
    records: RecordStore
    partners: Mapping[str, Partner]
    audit: AuditLog
    clock: Clock
    tokens: TokenStore
    requests: RequestLog
    _mapped: _Mapped | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- construction ----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings, env: Mapping[str, str], *, clock: Clock = utc_now) -> Services:
        """Open the database named by the settings (tables created on first use) and read the partners file."""
        engine = open_store(settings.database_url)
        audit_events.create(engine, checkfirst=True)  # readable (empty) before the first disclosure writes to it
        return cls(
            settings=settings,
            engine=engine,
            records=RecordStore(engine),
            partners=_partners(settings, env),
            audit=SqlAuditLog(normalize_url(settings.database_url)),
            clock=clock,
            tokens=TokenStore(engine),
            requests=RequestLog(engine),
        )

    @classmethod
    def from_paths(
        cls, settings: Settings, env: Mapping[str, str], paths: Sequence[Path], *, clock: Clock = utc_now
    ) -> Services:
        """Open, and seed an empty record store from record files (the service's defaults; tests)."""
        services = cls.open(settings, env, clock=clock)
        if services.records.count() == 0:
            services.seed(paths)
        return services

    def seed(self, paths: Sequence[Path]) -> IngestReport:
        """Ingest record files as one batch (no sync is queued: nothing was sent before, the first sync sends all)."""
        report = self.records.ingest(load_paths(paths), at=self.clock())
        if not report.accepted:
            raise InputError("the seed records were rejected: nothing was stored", report.problems)
        return report

    def close(self) -> None:
        self.engine.dispose()

    # --- records ----------------------------------------------------------------------------------------------

    def ingest(self, data: bytes, *, xml: bool) -> tuple[IngestReport, int]:
        """Validate and store a batch (all or nothing), then queue a sync of every client it changed for every
        partner that receives pushes. Returns the report and how many outbox items were added."""
        report = self.records.ingest_bytes(data, xml=xml, at=self.clock())
        if not report.accepted:
            return report, 0
        clients = affected_clients(report)
        now = self.clock().timestamp()
        queued = sum(
            outbox.enqueue(self.engine, partner.id, clients, now)
            for partner in self.partners.values()
            if partner.push != "none" and clients
        )
        return report, queued

    def _current(self) -> _Mapped:
        version, cached = self.records.version(), self._mapped
        if cached is not None and cached.version == version:
            return cached
        version, clinic = self.records.clinic()
        charts = {c.client.id: c for c in clinic.charts}
        if cached is not None and cached.clinic.directory == clinic.directory:
            # A mapping depends on the client's chart and the directory only: when the directory did not change,
            # a client whose chart did not change keeps its mapped chart (and the context its shared directory
            # resources), so an ingest costs the mapping of the clients it changed, not of the whole store.
            mapped = _Mapped(version, clinic, cached.ctx, charts)
            mapped.done = {
                client_id: result
                for client_id, result in cached.done.items()
                if client_id in charts and charts[client_id] == cached.charts.get(client_id)
            }
        else:
            mapped = _Mapped(version, clinic, context(clinic, self.settings), charts)
        self._mapped = mapped
        return mapped

    def clinic(self) -> Clinic:
        """The stored records assembled (directory and charts), as of the latest ingest."""
        with self._lock:
            return self._current().clinic

    def client_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._current().charts)

    def mapped_chart(self, client_id: str) -> MappedChart | None:
        """The client's current records, mapped and validated; None for an unknown client. A mapping defect
        raises FhirValidationError (a bug to report, never the caller's fault)."""
        with self._lock:
            current = self._current()
            chart = current.charts.get(client_id)
            if chart is None:
                return None
            result = current.done.get(client_id)
            if result is None:
                try:
                    result = map_chart(chart, current.ctx, strict=self.settings.strict_validation)
                except AdapterError as exc:
                    result = exc
                current.done[client_id] = result
        if isinstance(result, AdapterError):
            raise result
        return result

    def mapped_charts(self) -> Iterator[MappedChart]:
        """Every client's mapped chart; a client whose mapping fails is skipped and counted in the log."""
        failed = 0
        for client_id in self.client_ids():
            try:
                mapped = self.mapped_chart(client_id)
            except AdapterError:
                failed += 1
                continue
            if mapped is not None:
                yield mapped
        if failed:
            log.warning("%d client(s) could not be mapped (a mapping defect)", failed)


def _partners(settings: Settings, env: Mapping[str, str]) -> dict[str, Partner]:
    """The partners file; the shipped default may be absent (a clinic that syncs with nobody), a configured one not."""
    path = settings.partners_file
    if not path.exists():
        if "partners_file" in settings.model_fields_set:
            raise PartnerConfigError(f"partners file {path} does not exist")
        return {}
    return {p.id: p for p in load_partners(path, env)}
