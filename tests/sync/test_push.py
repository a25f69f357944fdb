"""The push against an in-memory FHIR server (MockTransport): modes, idempotency, withheld, faults, dead."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from adapter.pipeline import MappedChart
from adapter.sync import outbox
from adapter.sync.client import FhirClient
from adapter.sync.plan import IdMode
from adapter.sync.push import Pusher, PushReport, WriteMode
from adapter.sync.store import open_store
from adapter.sync.worker import Worker, charts_by_client
from tests.sync.conftest import no_wait, partner, release_except
from tests.sync.fakefhir import FakeFhir, Fault

ID_SYSTEM = "https://fhir.riverbend.example.org/fhir/sid/resource-id"


def pusher(
    fake: FakeFhir,
    engine: Engine,
    write_mode: WriteMode = "transaction",
    id_mode: IdMode = "client-ids",
    **overrides: Any,
) -> Pusher:
    p = partner(**overrides)
    client = FhirClient(p, httpx.Client(transport=fake.transport()), retrying=no_wait(p))
    return Pusher(client, engine, write_mode, id_mode, ID_SYSTEM)


def chart(charts: list[MappedChart], client_id: str) -> MappedChart:
    return next(c for c in charts if c.client_id == client_id)


@pytest.mark.parametrize("write_mode", ["transaction", "batch", "single"])
@pytest.mark.parametrize("id_mode", ["client-ids", "conditional"])
def test_every_mode_delivers_once_and_is_idempotent(
    charts: list[MappedChart], db_url: str, write_mode: WriteMode, id_mode: IdMode
) -> None:
    fake = FakeFhir()
    engine = open_store(db_url)
    push = pusher(fake, engine, write_mode, id_mode)
    c = chart(charts, "cl-06")
    first = push.push(c, release_except())
    assert first.sent == len(c.resources) and not first.rejected and not first.failed
    assert len(fake.store) == len(c.resources)
    assert fake.version_count() == len(c.resources)  # one version each
    if id_mode == "client-ids":
        assert {k[1] for k in fake.store} == {r["id"] for r in c.resources}
    else:  # the server chose its own ids; references point at them
        assert all(k[1].startswith("srv-") for k in fake.store)
        task = next(r for k, r in fake.store.items() if k[0] == "Task")
        assert task["focus"]["reference"].startswith("ServiceRequest/srv-")
    writes = len(fake.writes())
    second = push.push(c, release_except())
    assert second.sent == 0 and second.unchanged == len(c.resources)
    assert len(fake.writes()) == writes  # nothing sent at all
    assert fake.version_count() == len(c.resources)


def test_chunks_respect_the_partner_limit(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    push = pusher(fake, open_store(db_url), max_entries=10)
    c = chart(charts, "cl-08")
    push.push(c, release_except())
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == -(-len(c.resources) // 10)


def test_dependency_order_puts_targets_first(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    push = pusher(fake, open_store(db_url), "single")
    push.push(chart(charts, "cl-06"), release_except())
    order = [r.url.path.split("/")[-2] for r in fake.requests if r.method == "PUT"]
    assert order.index("Patient") < order.index("Observation") < order.index("Provenance")
    assert order[-1] == "Provenance"


def test_withheld_resources_are_never_sent(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    push = pusher(fake, open_store(db_url))
    c = chart(charts, "cl-02")
    report = push.push(c, release_except(lambda r: r["resourceType"] == "DocumentReference"))
    notes = [r for r in c.resources if r["resourceType"] == "DocumentReference"]
    assert notes and len(report.withheld) == len(notes)
    assert not [k for k in fake.store if k[0] == "DocumentReference"]
    assert all(b'"resourceType":"DocumentReference"' not in r.content for r in fake.requests)


def test_partner_push_types_are_honoured(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    push = pusher(fake, open_store(db_url), push=["Patient", "Condition"])
    report = push.push(chart(charts, "cl-06"), release_except())
    assert {k[0] for k in fake.store} == {"Patient", "Condition"}
    assert report.not_pushed > 0


def test_4xx_is_dead_with_the_partners_outcome(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    engine = open_store(db_url)
    push = pusher(fake, engine, "batch")
    c = chart(charts, "cl-06")
    bad_id = next(r["id"] for r in c.resources if r["resourceType"] == "Observation")

    def corrupt(r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "status": "bogus"} if r["id"] == bad_id else r

    def release(mc: MappedChart, p: Any, t: Any) -> Any:
        from adapter.sync.release import Released

        return Released([corrupt(r) for r in mc.resources])

    outbox.enqueue(engine, "psych", ["cl-06"], 0)
    worker = Worker(engine, {"psych": push}, charts_by_client(charts), release, clock=lambda: 1.0)
    summary = worker.run_once()["psych"]
    assert summary.dead == 1 and summary.sent == len(c.resources) - 1
    (item,) = outbox.items(engine)
    assert item.state == "dead" and item.last_status == 400
    assert item.last_outcome is not None
    assert item.last_outcome["issue"][0]["code"] == "code-invalid"  # the partner's own words, kept
    assert "Observation/" + bad_id in (item.last_error or "")


def test_5xx_then_success_is_delivered_once(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    fake.faults.append(Fault(lambda r: r.method == "POST", lambda r: httpx.Response(503), times=2))
    push = pusher(fake, open_store(db_url))
    c = chart(charts, "cl-07")
    report = push.push(c, release_except())
    assert report.sent == len(c.resources) and not report.failed
    assert fake.version_count() == len(c.resources)


def test_response_lost_after_apply_is_not_sent_twice(charts: list[MappedChart], db_url: str) -> None:
    """A connection reset after the server applied the transaction: re-read, do not write again."""

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    fake = FakeFhir()
    fake.faults.append(Fault(lambda r: r.method == "POST", reset, after=True))
    push = pusher(fake, open_store(db_url))
    c = chart(charts, "cl-07")
    report = push.push(c, release_except())
    assert report.sent == len(c.resources) and not report.failed
    assert fake.version_count() == len(c.resources)  # no second version of anything
    assert len([r for r in fake.requests if r.method == "POST"]) == 1


def test_412_rereads_and_retries_once(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    fake.faults.append(Fault(lambda r: r.method == "PUT", lambda r: httpx.Response(412), times=1))
    push = pusher(fake, open_store(db_url), "single")
    c = chart(charts, "cl-07")
    report = push.push(c, release_except())
    assert report.sent == len(c.resources) and not report.rejected
    fake2 = FakeFhir()
    fake2.faults.append(Fault(lambda r: r.method == "PUT", lambda r: httpx.Response(409), times=1000))
    push2 = pusher(fake2, open_store(db_url.replace("sync.db", "other.db")), "single")
    report2 = push2.push(c, release_except())
    assert len(report2.rejected) == len(c.resources)  # re-read once, sent once more, then given up
    assert all(r.status == 409 for r in report2.rejected)


def test_unreachable_partner_leaves_the_item_failed_then_dead(charts: list[MappedChart], db_url: str) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeFhir()
    fake.faults.append(Fault(lambda r: True, refuse, times=10_000))
    engine = open_store(db_url)
    push = pusher(fake, engine)
    outbox.enqueue(engine, "psych", ["cl-07"], 0)
    now = [0.0]
    worker = Worker(engine, {"psych": push}, charts_by_client(charts), release_except(), clock=lambda: now[0])
    for expected in ("failed", "failed", "dead"):  # item_attempts = 3
        worker.run_once()
        (item,) = outbox.items(engine)
        assert item.state == expected
        assert "ConnectError" in (item.last_error or "")
        now[0] += 10_000  # past any backoff
    assert fake.store == {}


def test_no_release_no_send(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    push = pusher(fake, open_store(db_url))
    report = push.push(chart(charts, "cl-06"), release_except(lambda r: True))
    assert report.sent == 0 and fake.writes() == []


def test_part2_data_travels_with_its_notice_and_consent_copies_whatever_the_push_list(
    charts: list[MappedChart], db_url: str
) -> None:
    from datetime import UTC, datetime

    from adapter.consent import SqlAuditLog
    from adapter.sync.push import carries_part2, is_notice
    from adapter.sync.release import consent_release

    fake = FakeFhir()
    # The primary-care practice holds cl-02's Part 2 consent; its push list names clinical types only.
    push = pusher(
        fake,
        open_store(db_url),
        id="pcp",
        recipient={"organization_npi": "1384772053"},
        push=["Patient", "Condition", "MedicationRequest", "Observation"],
    )
    push.clock = lambda: datetime(2026, 3, 1, 17, 0, tzinfo=UTC).timestamp()
    report = push.push(chart(charts, "cl-02"), consent_release(SqlAuditLog(db_url)))
    assert not report.failed and not report.rejected
    held = list(fake.store.values())
    assert any(carries_part2(r) for r in held if r["resourceType"] == "Condition")
    (notice,) = [r for r in held if is_notice(r)]
    named = {x["reference"] for x in notice.get("context", {}).get("related", [])}
    assert named and named <= {f"Consent/{r['id']}" for r in held if r["resourceType"] == "Consent"}
    assert {r["resourceType"] for r in held} <= {
        "Patient",
        "Condition",
        "MedicationRequest",
        "Observation",
        "DocumentReference",
        "Consent",
    }
    assert not any(r["resourceType"] == "DocumentReference" and not is_notice(r) for r in held)  # no notes


@pytest.mark.parametrize("defer_missing", [True, False])
def test_an_item_for_a_client_the_snapshot_lacks(charts: list[MappedChart], db_url: str, defer_missing: bool) -> None:
    """A store snapshot taken before an ingest lacks the new client: its item waits for the next run, unsent and
    uncounted. Record files that lost a client complete its item (nothing is left to send)."""
    fake = FakeFhir()
    engine = open_store(db_url)
    outbox.enqueue(engine, "psych", ["cl-new"], 0)
    worker = Worker(
        engine,
        {"psych": pusher(fake, engine)},
        charts_by_client(charts),
        release_except(),
        clock=lambda: 1.0,
        defer_missing=defer_missing,
    )
    worker.run_once()
    (item,) = outbox.items(engine)
    if defer_missing:
        assert item.state == "pending" and item.attempts == 0 and item.next_attempt_at == 1.0
    else:
        assert item.state == "sent"
    assert fake.store == {}
    # The next run, whose snapshot has the client, delivers it.
    with_new = {**{c.client_id: c for c in charts}, "cl-new": chart(charts, "cl-06")}  # stands in for the new one
    again = Worker(engine, {"psych": pusher(fake, engine)}, with_new.get, release_except(), clock=lambda: 2.0)
    again.run_once()
    if defer_missing:
        (item,) = outbox.items(engine)
        assert item.state == "sent" and fake.store


def test_a_batch_of_items_shares_bundles_and_sends_a_shared_resource_once(
    charts: list[MappedChart], db_url: str
) -> None:
    fake = FakeFhir()
    push = pusher(fake, open_store(db_url), max_entries=100)
    work = [chart(charts, c) for c in ("cl-04", "cl-06", "cl-08")]
    reports = push.push_batch([(n, c) for n, c in enumerate(work, start=1)], release_except())
    unique = {(r["resourceType"], r["id"]) for c in work for r in c.resources}
    assert set(fake.store) == unique and fake.version_count() == len(unique)  # each resource once
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == -(-len(unique) // 100)  # shared Bundles, not one set per client
    for c, report in zip(work, reports, strict=True):
        assert isinstance(report, PushReport) and not report.failed and not report.rejected
        assert report.sent + report.unchanged == len(c.resources)  # every item accounts for all it released
    assert sum(r.sent for r in reports if isinstance(r, PushReport)) == len(unique)
    # The same three charts again: nothing to send, all unchanged.
    again = push.push_batch([(n, c) for n, c in enumerate(work, start=1)], release_except())
    assert all(isinstance(r, PushReport) and r.sent == 0 for r in again) and len(fake.writes()) == len(posts)


def test_a_failed_bundle_fails_every_item_that_released_its_resources(charts: list[MappedChart], db_url: str) -> None:
    fake = FakeFhir()
    fake.faults.append(Fault(lambda r: r.method == "POST", lambda r: httpx.Response(500), times=1000))  # down
    push = pusher(fake, open_store(db_url), max_entries=100)
    work = [chart(charts, "cl-04"), chart(charts, "cl-06")]
    reports = push.push_batch([(1, work[0]), (2, work[1])], release_except())
    for c, report in zip(work, reports, strict=True):
        assert isinstance(report, PushReport) and report.failed == len(c.resources) and report.sent == 0
        assert report.failure is not None and report.failure.status == 500


def test_a_release_refusal_fails_its_item_only(charts: list[MappedChart], db_url: str) -> None:
    from adapter.errors import AuditError

    def release(mc: MappedChart, partner: Any, instant: Any) -> Any:
        if mc.client_id == "cl-04":
            raise AuditError("the audit could not be written")
        return release_except()(mc, partner, instant)

    fake = FakeFhir()
    push = pusher(fake, open_store(db_url))
    refused, report = push.push_batch([(1, chart(charts, "cl-04")), (2, chart(charts, "cl-06"))], release)
    assert isinstance(refused, AuditError)
    assert isinstance(report, PushReport) and report.sent == len(chart(charts, "cl-06").resources)
    refused_patient = next(r["id"] for r in chart(charts, "cl-04").resources if r["resourceType"] == "Patient")
    assert ("Patient", refused_patient) not in fake.store  # nothing of the refused chart was sent


class _CountingAudit:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def record(self, records: Any) -> None:
        from adapter.errors import AuditError

        if self.fail:
            raise AuditError("the disclosure audit could not be written: nothing was released")
        self.calls.append(len(records))


def test_a_batch_audits_its_releases_in_one_write_before_sending(charts: list[MappedChart], db_url: str) -> None:
    from adapter.sync.release import consent_release

    fake = FakeFhir()
    audit = _CountingAudit()
    push = pusher(fake, open_store(db_url))
    work = [(n, chart(charts, c)) for n, c in enumerate(("cl-04", "cl-06", "cl-08"), start=1)]
    reports = push.push_batch(work, consent_release(audit))
    assert all(isinstance(r, PushReport) and r.sent + r.unchanged > 0 for r in reports)
    assert len(audit.calls) == 1 and audit.calls[0] > len(work)  # every decision of the three, one write
    single = _CountingAudit()
    consent_release(single)(chart(charts, "cl-04"), push.client.partner, push_instant())
    assert len(single.calls) == 1  # outside a batch, enforce writes its own


def test_no_audit_no_send_for_the_whole_batch(charts: list[MappedChart], db_url: str) -> None:
    from adapter.errors import AuditError
    from adapter.sync.release import consent_release

    fake = FakeFhir()
    push = pusher(fake, open_store(db_url))
    work = [(1, chart(charts, "cl-04")), (2, chart(charts, "cl-06"))]
    results = push.push_batch(work, consent_release(_CountingAudit(fail=True)))
    assert all(isinstance(r, AuditError) for r in results)
    assert fake.writes() == [] and fake.store == {}  # fail closed: nothing released, nothing sent


def push_instant() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
