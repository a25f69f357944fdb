"""Pull (adapter/sync/pull.py): malformed resources, atomic pages, versions, the cursor across pages, the
partner's own ids, pulled records on disk, Task statuses mapped back. HTTP is an httpx.MockTransport; storage a
real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from adapter.records import Diagnosis, ReportedMedication
from adapter.sync import ledger
from adapter.sync import pull as pull_mod
from adapter.sync.client import FhirClient
from adapter.sync.ledger import Mark
from adapter.sync.pull import (
    PullReport,
    cursor,
    pull,
    pulled_records_of,
    received_of,
    referral_updates_of,
)
from adapter.sync.pulled import ClinicIndex
from adapter.sync.store import open_store
from tests.sync.conftest import no_wait, partner

FHIR_BASE = "https://clinic.example/fhir"
TASK_SYSTEM = f"{FHIR_BASE}/sid/referral-task"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
Handler = Callable[[httpx.Request], httpx.Response]


def index(**status: str) -> ClinicIndex:
    return ClinicIndex(
        patients={"pat-1": ("cl-01", "prog-omh")},
        referral_by_request={"sr-1": "ref-1"},
        referral_status=status or {"ref-1": "sent"},
        task_system=TASK_SYSTEM,
        referral_by_task={"task-ref-1": "ref-1"},
    )


def client(handler: Handler, types: list[str] | None = None, page_size: int = 100) -> FhirClient:
    p = partner(pull=types or ["Task"], page_size=page_size)
    return FhirClient(p, httpx.Client(transport=httpx.MockTransport(handler)), retrying=no_wait(p))


def searchset(
    resources: list[dict[str, Any]], next_url: str | None = None, *, searched_at: str | None = None
) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if searched_at:
        bundle["meta"] = {"lastUpdated": searched_at}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def serve(*bundles: dict[str, Any]) -> Handler:
    """Answers every search with the same Bundle (or the next of several, the last one repeated)."""
    answers = list(bundles)

    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers.pop(0) if len(answers) > 1 else answers[0])

    return handle


def task(status: str, updated: str | None, version: str | None = None, **extra: Any) -> dict[str, Any]:
    meta = {k: v for k, v in (("versionId", version), ("lastUpdated", updated)) if v is not None}
    return {
        "resourceType": "Task",
        "id": "t1",
        **({"meta": meta} if meta else {}),
        "status": status,
        "intent": "order",
        "identifier": [{"system": TASK_SYSTEM, "value": "ref-1"}],
        **extra,
    }


def medreq(rid: str, subject: str, version: str = "1", status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "meta": {"versionId": version, "lastUpdated": f"2026-03-01T10:00:0{version}Z"},
        "status": status,
        "intent": "order",
        "subject": {"reference": subject},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "312938", "display": "sertraline 50 MG Oral Tablet"}]
        },
        "authoredOn": "2026-03-01T10:00:00Z",
        "dosageInstruction": [{"text": "50 mg once daily"}],
    }


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_store(f"sqlite:///{tmp_path / 'sync.db'}")


# --- 1. a malformed resource is reported and skipped; a page is stored with its effects or not at all --------


def test_a_malformed_resource_is_skipped_and_the_rest_of_its_page_applied(engine: Engine) -> None:
    good = task("rejected", "2026-03-01T10:00:00Z", "2", statusReason={"text": "no capacity"})
    bad = {**task("accepted", "2026-03-01T10:00:01Z", "1"), "id": "t2", "statusReason": "client Ana Rivera busy"}
    report = pull(client(serve(searchset([bad, good]))), engine, index())
    assert report.failures == ["Task/t2: skipped, malformed: Task.statusReason is not an object"]
    assert [(u["referral_id"], u["status"], u["reason"]) for u in referral_updates_of(engine)] == [
        ("ref-1", "declined", "no capacity")
    ]
    assert [r["remote_id"] for r in received_of(engine, "psych", "Task")] == ["t1"]  # the bad one is not "known"
    again = pull(client(serve(searchset([bad, good]))), engine, index())
    assert again.failures == report.failures and again.referral_updates == []  # reported again, applied once


@pytest.mark.parametrize(
    "broken",
    [
        {"identifier": "ref-1"},
        {"identifier": [{"system": TASK_SYSTEM, "value": 7}]},
        {"meta": {"versionId": "1", "lastUpdated": "yesterday"}},
        {"meta": "v1"},
        {"basedOn": {"reference": "ServiceRequest/sr-1"}, "identifier": []},
        {"lastModified": "2026-03-01T10:00:00Z" * 3},
    ],
)
def test_every_shape_error_is_a_failure_line_never_a_traceback(engine: Engine, broken: dict[str, Any]) -> None:
    bad = {**task("accepted", "2026-03-01T10:00:01Z", "1"), "id": "t2", **broken}
    good = task("accepted", "2026-03-01T10:00:00Z", "2")
    report = pull(client(serve(searchset([bad, good]))), engine, index())
    assert len(report.failures) == 1 and report.failures[0].startswith("Task/t2: skipped, malformed: ")
    assert [u["status"] for u in report.referral_updates] == ["accepted"]


def test_a_resource_without_a_usable_id_is_reported(engine: Engine) -> None:
    nameless = {k: v for k, v in task("accepted", "2026-03-01T10:00:00Z", "1").items() if k != "id"}
    report = pull(
        client(serve(searchset([nameless, {**task("accepted", None, "1"), "id": "x" * 65}]))), engine, index()
    )
    assert report.failures == [
        "Task at entry 0: skipped, its id is missing or not a FHIR id",
        "Task at entry 1: skipped, its id is missing or not a FHIR id",
    ]


def test_a_crash_while_applying_a_page_leaves_nothing_marked_as_received(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = serve(searchset([task("accepted", "2026-03-01T10:00:00Z", "2")]))
    real_upsert = pull_mod.upsert

    def failing_upsert(conn: Any, table: Any, rows: Any, update: Any) -> None:
        real_upsert(conn, table, rows, update)
        if table.name == "sync_referral_updates" and rows:
            raise RuntimeError("disk full")

    monkeypatch.setattr(pull_mod, "upsert", failing_upsert)
    with pytest.raises(RuntimeError):
        pull(client(answer), engine, index())
    assert received_of(engine, "psych", "Task") == [] and referral_updates_of(engine) == []
    monkeypatch.setattr(pull_mod, "upsert", real_upsert)
    report = pull(client(answer), engine, index())  # the next pass applies what the crash lost
    assert [u["status"] for u in report.referral_updates] == ["accepted"]
    assert len(referral_updates_of(engine)) == 1


def test_a_page_that_is_not_a_bundle_is_a_failure_and_the_cursor_stays(engine: Engine) -> None:
    oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
    report = pull(client(serve(oo)), engine, index())
    assert report.failures == ["Task: a search page is not a Bundle with an entry array; the pass is repeated"]
    assert cursor(engine, "psych", "Task") is None


# --- 3. versions: versionId, else lastUpdated, else a hash of the body -----------------------------------------


def test_a_partner_without_version_ids_still_delivers_each_update(engine: Engine) -> None:
    state = {"task": task("accepted", "2026-03-01T10:00:00Z")}
    c = client(lambda _r: httpx.Response(200, json=searchset([state["task"]])))
    assert [u["status"] for u in pull(c, engine, index()).referral_updates] == ["accepted"]
    state["task"] = task("completed", "2026-03-05T09:00:00Z")
    second = pull(c, engine, index())
    assert second.fetched == {"Task": 1}
    assert [(u["status"], u["task_version"]) for u in second.referral_updates] == [
        ("completed", "2026-03-05T09:00:00Z")
    ]
    assert pull(c, engine, index()).fetched == {"Task": 0}  # the same version again brings nothing


def test_a_partner_without_meta_at_all_is_versioned_by_content(engine: Engine) -> None:
    state = {"task": task("accepted", None)}
    c = client(lambda _r: httpx.Response(200, json=searchset([state["task"]])))
    assert pull(c, engine, index()).fetched == {"Task": 1}
    assert pull(c, engine, index()).fetched == {"Task": 0}
    state["task"] = task("completed", None)
    assert [u["status"] for u in pull(c, engine, index()).referral_updates] == ["completed"]
    (first, second) = sorted(received_of(engine, "psych", "Task"), key=lambda r: r["received_at"])
    assert first["version_id"].startswith("sha256-") and first["version_id"] != second["version_id"]
    assert all(len(r["version_id"]) <= 64 for r in (first, second))


# --- 2. the cursor never passes the instant the search started --------------------------------------------------


def _offset_paging_partner(searched_at: Callable[[], str | None]) -> tuple[Handler, dict[int, dict[str, Any]]]:
    """A partner paging with _offset over its Tasks sorted by _lastUpdated, that answers referral 1 again while
    the first page is read (so the rest shifts under the pass)."""

    def t(i: int, status: str, ts: str, v: str) -> dict[str, Any]:
        return {**task(status, ts, v), "id": f"t{i}", "identifier": [{"system": TASK_SYSTEM, "value": f"ref-{i}"}]}

    db = {
        1: t(1, "accepted", "2026-03-01T10:00:01Z", "2"),
        2: t(2, "accepted", "2026-03-01T10:00:02Z", "2"),
        3: t(3, "rejected", "2026-03-01T10:00:03Z", "2"),
        4: t(4, "accepted", "2026-03-01T10:00:04Z", "2"),
    }
    calls: list[dict[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        q = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        calls.append(q)
        since = q.get("_lastUpdated", "ge").removeprefix("ge")
        rows = sorted(
            (r for r in db.values() if r["meta"]["lastUpdated"] >= since), key=lambda r: r["meta"]["lastUpdated"]
        )
        off, n = int(q.get("_offset", 0)), int(q["_count"])
        page = rows[off : off + n]
        if len(calls) == 1:
            db[1] = t(1, "completed", "2026-03-01T10:00:05Z", "3")
        more = off + n < len(rows)
        nxt = f"http://fake.test/fhir/Task?_count={n}&_offset={off + n}&_lastUpdated=ge{since}" if more else None
        return httpx.Response(200, json=searchset(page, nxt, searched_at=searched_at() if off == 0 else None))

    return handle, db


def test_a_resource_passed_over_while_pages_shifted_is_read_on_the_next_pass(engine: Engine) -> None:
    clock = iter(["2026-03-01T10:00:04.500Z", "2026-03-01T10:00:06Z", "2026-03-01T10:00:07Z"])
    handle, _db = _offset_paging_partner(lambda: next(clock))
    idx = ClinicIndex({}, {}, {f"ref-{i}": "sent" for i in range(1, 5)}, TASK_SYSTEM)
    first = pull(client(handle, page_size=2), engine, idx)
    assert "ref-3" not in {u["referral_id"] for u in first.referral_updates}  # slipped past a page boundary
    assert cursor(engine, "psych", "Task") is None  # t1 changed after the search started: the window is kept
    second = pull(client(handle, page_size=2), engine, idx)
    assert [(u["referral_id"], u["status"]) for u in second.referral_updates] == [("ref-3", "declined")]
    assert cursor(engine, "psych", "Task") == "2026-03-01T10:00:05Z"  # newest seen, before the search started
    assert pull(client(handle, page_size=2), engine, idx).fetched == {"Task": 0}


def test_the_cursor_stops_at_the_search_start_from_bundle_meta(engine: Engine) -> None:
    # A snapshot search whose page carries a resource's current version, changed after the search started.
    page = searchset([task("completed", "2026-03-01T10:00:09Z", "3")], searched_at="2026-03-01T10:00:04.250+00:00")
    pull(client(serve(page)), engine, index())
    assert cursor(engine, "psych", "Task") == "2026-03-01T10:00:04.250+00:00"


def test_the_cursor_stops_at_the_search_start_from_the_date_header(engine: Engine) -> None:
    def handle(_r: httpx.Request) -> httpx.Response:
        body = searchset([task("completed", "2026-03-01T10:00:09Z", "3")])
        return httpx.Response(200, json=body, headers={"Date": "Sun, 01 Mar 2026 10:00:04 GMT"})

    pull(client(handle), engine, index())
    assert cursor(engine, "psych", "Task") == "2026-03-01T10:00:04Z"


def test_without_a_search_time_the_cursor_is_the_newest_seen(engine: Engine) -> None:
    pull(client(serve(searchset([task("completed", "2026-03-01T10:00:09Z", "3")]))), engine, index())
    assert cursor(engine, "psych", "Task") == "2026-03-01T10:00:09Z"


def test_the_next_pass_searches_from_the_cursor(engine: Engine) -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.params.get("_lastUpdated")))
        return httpx.Response(
            200, json=searchset([task("accepted", "2026-03-01T10:00:01Z", "2")], searched_at="2026-03-02T00:00:00Z")
        )

    pull(client(handle), engine, index())
    pull(client(handle), engine, index())
    assert seen == ["None", "ge2026-03-01T10:00:01Z"]


# --- 5. partners that assign their own ids -------------------------------------------------------------------


def test_partner_ids_are_translated_to_ours_through_the_ledger(engine: Engine) -> None:
    ledger.record(
        engine,
        "psych",
        "sent",
        [
            Mark(("Patient", "pat-1"), "h1", "srv-17", "1"),
            Mark(("ServiceRequest", "sr-1"), "h2", "srv-sr", "1"),
            Mark(("Task", "task-ref-1"), "h3", "srv-task", "1"),
        ],
        0.0,
    )
    by_focus = {**task("accepted", "2026-03-01T10:00:00Z", "2"), "id": "other", "identifier": []}
    by_focus["focus"] = {"reference": "ServiceRequest/srv-sr"}
    by_id = {**task("completed", "2026-03-01T10:00:01Z", "4"), "id": "srv-task", "identifier": []}
    tasks = pull(client(serve(searchset([by_focus, by_id]))), engine, index())
    assert [(u["referral_id"], u["status"]) for u in tasks.referral_updates] == [
        ("ref-1", "accepted"),
        ("ref-1", "completed"),
    ]
    meds = pull(client(serve(searchset([medreq("m2", "Patient/srv-17")])), ["MedicationRequest"]), engine, index())
    assert [(r["client"], r["id"]) for r in meds.records] == [("cl-01", "pulled-psych-m2")] and meds.not_mapped == 0


def test_our_own_write_echoed_under_the_partners_id_is_recognized(engine: Engine) -> None:
    ledger.record(engine, "psych", "sent", [Mark(("Task", "task-ref-1"), "h3", "srv-task", "1")], 0.0)
    echo = {**task("accepted", "2026-03-01T10:00:00Z", "1"), "id": "srv-task"}
    report = pull(client(serve(searchset([echo]))), engine, index())
    assert report.own == 1 and report.referral_updates == []


# --- 7. pulled records are stored --------------------------------------------------------------------------------


def test_pulled_records_are_stored_and_a_later_version_supersedes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    condition = {
        "resourceType": "Condition",
        "id": "c9",
        "meta": {"versionId": "1", "lastUpdated": "2026-03-01T10:00:00Z"},
        "subject": {"reference": "Patient/pat-1"},
        "code": {"coding": [{"system": ICD10CM, "code": "F41.1", "display": "Generalized anxiety disorder"}]},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "recordedDate": "2026-02-27T15:20:00-06:00",
    }
    pull(client(serve(searchset([medreq("m1", "Patient/pat-1")])), ["MedicationRequest"]), open_store(url), index())
    pull(client(serve(searchset([condition])), ["Condition"]), open_store(url), index())
    later = medreq("m1", "Patient/pat-1", version="2", status="stopped")
    pull(client(serve(searchset([later])), ["MedicationRequest"]), open_store(url), index())

    reopened = open_store(url)  # another process, later
    rows = pulled_records_of(reopened)
    assert [(r["kind"], r["record_id"], r["version_id"]) for r in rows] == [
        ("diagnosis", "pulled-psych-c9", "1"),
        ("reported_medication", "pulled-psych-m1", "2"),
    ]
    medication = rows[1]["record"]
    assert medication["status"] == "stopped" and medication["client"] == "cl-01"
    ReportedMedication.model_validate(medication)
    Diagnosis.model_validate(rows[0]["record"])
    assert len(pulled_records_of(reopened, "psych", latest=False)) == 3
    assert pulled_records_of(reopened, "other-partner") == []


# --- 6. Task statuses mapped back ---------------------------------------------------------------------------------


def test_a_failed_task_leaves_the_referral_unchanged_and_is_reported(engine: Engine) -> None:
    report = pull(
        client(serve(searchset([task("failed", "2026-03-01T10:00:00Z", "5")]))), engine, index(**{"ref-1": "accepted"})
    )
    assert report.referral_updates == [] and referral_updates_of(engine) == []
    assert len(report.failures) == 1
    assert report.failures[0].startswith("Task/t1: needs review: the partner attempted the referral")
    assert [r["version_id"] for r in received_of(engine, "psych", "Task")] == ["5"]


def test_on_hold_is_in_progress_and_news_even_for_a_referral_in_progress(engine: Engine) -> None:
    report = pull(
        client(serve(searchset([task("on-hold", "2026-03-01T10:00:00Z", "6")]))),
        engine,
        index(**{"ref-1": "in-progress"}),
    )
    assert [(u["status"], u["task_status"]) for u in report.referral_updates] == [("in-progress", "on-hold")]


@pytest.mark.parametrize(
    ("task_status", "referral"), [("ready", "accepted"), ("received", "sent"), ("rejected", "declined")]
)
def test_statuses_map_to_the_closest_referral_status(engine: Engine, task_status: str, referral: str) -> None:
    report = pull(
        client(serve(searchset([task(task_status, "2026-03-01T10:00:00Z", "2")]))), engine, index(**{"ref-1": "draft"})
    )
    assert [u["status"] for u in report.referral_updates] == [referral]


def test_a_declined_referral_always_has_a_reason(engine: Engine) -> None:
    report = pull(client(serve(searchset([task("rejected", "2026-03-01T10:00:00Z", "2")]))), engine, index())
    (update,) = report.referral_updates
    assert update["status"] == "declined" and update["reason"] == "no reason given by the partner"


def test_a_task_for_a_referral_the_clinic_does_not_have_is_not_mapped(engine: Engine) -> None:
    stranger = {
        **task("accepted", "2026-03-01T10:00:00Z", "2"),
        "identifier": [{"system": TASK_SYSTEM, "value": "ref-404"}],
    }
    report = pull(client(serve(searchset([stranger]))), engine, index())
    assert report.referral_updates == [] and report.not_mapped == 1


def test_the_report_keeps_its_fields() -> None:
    report = PullReport("psych")
    assert (
        report.fetched,
        report.own,
        report.referral_updates,
        report.records,
        report.not_mapped,
        report.failures,
    ) == (
        {},
        0,
        [],
        [],
        0,
        [],
    )
    assert json.dumps(report.__dict__)  # plain data
