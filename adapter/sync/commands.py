"""What `bh-adapter sync`, `outbox ...` and `partners check` do, as functions returning result values.

Nothing here prints: adapter/cli.py renders the results and picks exit codes. The environment is passed in
(``env``) for ``${VAR}`` in the partners file and for secrets; settings come from adapter/settings.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine
from tenacity import Retrying

from adapter.consent import SqlAuditLog
from adapter.errors import AdapterError, Problem, SyncError
from adapter.pipeline import MappedChart, context, load, map_charts
from adapter.settings import Settings
from adapter.store.records import RecordStore
from adapter.sync import outbox
from adapter.sync.auth import SmartAuthenticator
from adapter.sync.capabilities import resolve_modes
from adapter.sync.outbox import Item
from adapter.sync.partners import NoAuth, Partner, load_partners, select
from adapter.sync.pull import PullReport, pull
from adapter.sync.pulled import ClinicIndex
from adapter.sync.push import PushReport
from adapter.sync.release import ReleaseFn, consent_release
from adapter.sync.retry import Failure
from adapter.sync.session import Session
from adapter.sync.store import normalize_url, open_store
from adapter.sync.worker import PartnerSummary, Worker, charts_by_client

ProgressFn = Callable[[int, int, Item, PushReport | None], None]  # (done, total, item, report)


@dataclass(frozen=True)
class SyncOptions:
    partners_file: Path
    records: Sequence[Path]
    partner_id: str | None = None
    once: bool = True
    push: bool = True
    pull: bool = True
    enqueue: bool = True  # False: only drain what is queued (extra workers on a shared PostgreSQL outbox)
    interval_s: float = 300.0  # between passes when not --once
    max_passes: int | None = None  # None: until stop() says so (daemon)
    from_store: bool = False  # charts from the service's record store (what POST /records ingested), not files
    # With from_store: where the mapped charts come from (the API's Services, which maps each client once per
    # store version); None maps the store afresh every pass.
    store_charts: Callable[[], list[MappedChart]] | None = None


@dataclass
class PartnerResult:
    partner: Partner
    modes: str | None = None  # how `auto` resolved, for the summary
    error: str | None = None  # the partner could not be synced at all (unreachable, refused credentials)
    push: PartnerSummary | None = None
    pull: PullReport | None = None


@dataclass
class SyncResult:
    partners: list[PartnerResult] = field(default_factory=list)
    input_problems: list[Problem] = field(default_factory=list)  # records that could not be read or mapped
    clients: int = 0
    passes: int = 0

    @property
    def exit_code(self) -> int:
        """0: everything delivered; 6: something failed, is dead, or a partner could not be reached."""
        failed = any(
            p.error or (p.push and (p.push.failed or p.push.dead or p.push.errors)) or (p.pull and p.pull.failures)
            for p in self.partners
        )
        if failed:
            return SyncError.exit_code
        return 3 if self.input_problems else 0


def _charts(options: SyncOptions, settings: Settings, engine: Engine) -> tuple[list[MappedChart], list[Problem]]:
    """Every client's mapped chart, from the record files or (``from_store``) from the record store."""
    if options.from_store and options.store_charts is not None:
        return options.store_charts(), []
    if options.from_store:
        _version, clinic = RecordStore(engine).clinic()
        problems = list(clinic.problems)
    else:
        loaded = load(options.records)
        clinic, problems = loaded.clinic, list(loaded.problems)
    charts: list[MappedChart] = []
    for mapped in map_charts(clinic, context(clinic, settings), strict=settings.strict_validation):
        if isinstance(mapped, AdapterError):
            problems += mapped.problems or [Problem(str(mapped))]
        else:
            charts.append(mapped)
    return charts, problems


def run_sync(
    settings: Settings,
    options: SyncOptions,
    env: Mapping[str, str],
    *,
    transport: httpx.BaseTransport | None = None,
    release: ReleaseFn | None = None,
    retrying: Callable[[Partner], Callable[[], Retrying]] | None = None,
    progress: ProgressFn | None = None,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Enqueue every client for every partner, drain the outbox (push), then pull; once, or every
    ``interval_s`` until ``stop()``. The release defaults to the consent engine, auditing into the same
    database."""
    partners = select(load_partners(options.partners_file, env), options.partner_id)
    result = SyncResult()
    session = Session.open(
        settings.database_url,
        env,
        settings.fhir_base,
        base_dir=options.partners_file.parent,
        transport=transport,
        retrying=retrying,
    )
    release = release or consent_release(SqlAuditLog(normalize_url(settings.database_url)), settings.clinic_timezone)
    passes = 0
    with session:
        while True:
            result = _one_pass(session, partners, settings, options, release, progress)
            passes += 1
            result.passes = passes
            if options.once or stop() or (options.max_passes is not None and passes >= options.max_passes):
                return result
            sleep(options.interval_s)


def _one_pass(
    session: Session,
    partners: Sequence[Partner],
    settings: Settings,
    options: SyncOptions,
    release: ReleaseFn,
    progress: ProgressFn | None,
) -> SyncResult:
    charts, problems = _charts(options, settings, session.engine)
    result = SyncResult(input_problems=problems, clients=len(charts))
    results = {p.id: PartnerResult(p) for p in partners}
    result.partners = list(results.values())
    pushing = [p for p in partners if options.push and p.push != "none"]
    pushers, modes = session.pushers(pushing)
    for pid, mode in modes.items():
        if isinstance(mode, Failure):
            results[pid].error = f"cannot read the CapabilityStatement: {mode.reason}"
        else:
            results[pid].modes = mode.why
    now = time.time()
    for pid in pushers if options.enqueue else ():
        outbox.enqueue(session.engine, pid, [c.client_id for c in charts], now)
    total = sum(outbox.counts(session.engine, pid)["pending"] for pid in pushers)
    done = 0

    def on_item(item: Item, report: PushReport | None) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, max(total, done), item, report)

    worker = Worker(
        session.engine, pushers, charts_by_client(charts), release, on_item=on_item, defer_missing=options.from_store
    )
    if pushers:
        for pid, summary in worker.run_once(list(pushers)).items():
            results[pid].push = summary
    if options.pull:
        index = ClinicIndex.of(charts, settings.fhir_base)
        for partner in partners:
            if partner.pull and results[partner.id].error is None:
                results[partner.id].pull = pull(session.client(partner), session.engine, index)
    return result


# --- outbox ------------------------------------------------------------------------------------------------


@contextmanager
def _store(settings: Settings) -> Iterator[Engine]:
    engine = open_store(settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def outbox_list(settings: Settings, *, state: str | None = None, partner_id: str | None = None) -> list[Item]:
    with _store(settings) as engine:
        return outbox.items(engine, state=state, partner_id=partner_id)


def outbox_retry(settings: Settings, item_id: int) -> Item:
    with _store(settings) as engine:
        return outbox.retry(engine, item_id, time.time())


def outbox_purge_dead(settings: Settings, *, partner_id: str | None = None) -> int:
    with _store(settings) as engine:
        return outbox.purge_dead(engine, partner_id)


# --- partners check ----------------------------------------------------------------------------------------


@dataclass
class PartnerCheck:
    partner: Partner
    reachable: bool = False
    fhir_version: str | None = None
    software: str | None = None
    modes: str | None = None
    auth: str = "not checked"
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the partner was not contacted

    @property
    def ok(self) -> bool:
        return self.skipped is not None or (self.reachable and not self.problems)


def partners_check(
    settings: Settings,
    partners_file: Path,
    env: Mapping[str, str],
    *,
    partner_id: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[PartnerCheck]:
    """Per partner: is it reachable, what its CapabilityStatement says (FHIR version, write modes), and
    whether its credentials work (a SMART token is fetched; an authenticated request is made)."""
    partners = select(load_partners(partners_file, env), partner_id)
    checks = []
    with Session.open(
        settings.database_url, env, settings.fhir_base, base_dir=partners_file.parent, transport=transport
    ) as session:
        for partner in partners:
            checks.append(_check(session, partner))
    return checks


def _check(session: Session, partner: Partner) -> PartnerCheck:
    check = PartnerCheck(partner)
    if partner.push == "none" and not partner.pull:
        check.skipped = "nothing to sync (push none, no pull): a recipient of packages built on request, e.g. UR"
        return check
    try:
        client = session.client(partner)
    except AdapterError as exc:  # a missing secret, an unreadable key
        check.problems.append(str(exc))
        return check
    capability = session.capability(partner)
    if isinstance(capability, Failure):
        check.problems.append(f"{partner.base_url}/metadata: {capability.reason}")
        if capability.kind == "auth":
            check.reachable = True
        return check
    check.reachable = True
    check.fhir_version = capability.get("fhirVersion")
    software = capability.get("software") or {}
    check.software = " ".join(str(software[k]) for k in ("name", "version") if software.get(k)) or None
    if check.fhir_version and not str(check.fhir_version).startswith("4.0"):
        check.problems.append(f"FHIR version {check.fhir_version}: the adapter sends R4 (4.0.1)")
    check.modes = resolve_modes(partner, capability).why
    if isinstance(partner.auth, NoAuth):
        check.auth = "none configured"
        return check
    if isinstance(client.auth, SmartAuthenticator):
        token = client.auth.headers(session.http)
        if isinstance(token, Failure):
            check.auth = "refused"
            check.problems.append(token.reason)
            return check
    probe = client.once("GET", partner.pull[0] if partner.pull else "Patient", params={"_count": "1"})
    if isinstance(probe, Failure) and probe.kind == "auth":
        check.auth = "refused"
        check.problems.append(probe.reason)
    else:
        check.auth = "ok"
    return check
