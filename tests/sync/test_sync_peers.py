"""The sync against the real peers: a psychiatry partner on Medplum and a primary-care partner on sekmet.

Pushes go through the real consent release point (adapter.consent.enforce).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from adapter.pipeline import MappedChart
from adapter.sync.partners import load_partners
from adapter.sync.push import is_notice
from tests.servers.client import request
from tests.servers.peers import Peer
from tests.sync.peerutil import allowed, copy_records, current, history, sync, two_partners


def _without_notices(peer: Peer, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The 42 CFR 2.32 notices are minted per disclosure (a new id per instant): counted apart."""
    return {k for k in keys if k[0] != "DocumentReference" or not is_notice(current(peer, k))}


def test_two_partners_hold_what_consent_allows_and_resync_adds_nothing(
    fresh_medplum: Peer, fresh_sekmet: Peer, tmp_path: Path, charts: list[MappedChart]
) -> None:
    partners_file = two_partners(tmp_path, fresh_medplum, fresh_sekmet)
    db = f"sqlite:///{tmp_path / 'sync.db'}"
    result = sync(db, partners_file, copy_records(tmp_path))
    assert result.exit_code == 0, [(p.partner.id, p.error, p.push and p.push.errors) for p in result.partners]
    now = datetime.now(UTC)
    psych, pcp = load_partners(partners_file, {})
    for peer, partner in ((fresh_medplum, psych), (fresh_sekmet, pcp)):
        held = history(peer)
        assert set(held.values()) == {1}  # one version of everything
        expected, notices = allowed(charts, partner, now)
        held_keys = _without_notices(peer, set(held))
        assert held_keys == expected  # exactly what the consent rules allow for this partner
        assert len(set(held) - held_keys) == notices
        summary = next(p for p in result.partners if p.partner.id == partner.id).push
        assert summary is not None and summary.withheld  # the consent rules withheld something from each
        # Nothing withheld was ever sent (directory resources are shared: withheld from one client's Bundle as
        # unreferenced, they may be released with another's).
        withheld = {w.ref for _, w in summary.withheld if not w.ref.startswith(("Organization/", "Practitioner/"))}
        assert not withheld & {f"{t}/{i}" for t, i in held}
    before = {p.base_url: history(p) for p in (fresh_medplum, fresh_sekmet)}
    again = sync(db, partners_file, copy_records(tmp_path / "again"))
    assert again.exit_code == 0
    for peer in (fresh_medplum, fresh_sekmet):
        assert history(peer) == before[peer.base_url]  # no new resource, no new version
    assert all(p.push is not None and p.push.sent == 0 for p in again.partners)


def test_revoked_part2_consent_stops_part2_data(fresh_medplum: Peer, fresh_sekmet: Peer, tmp_path: Path) -> None:
    partners_file = two_partners(tmp_path, fresh_medplum, fresh_sekmet)
    db = f"sqlite:///{tmp_path / 'sync.db'}"
    records = copy_records(tmp_path)
    first = sync(db, partners_file, records)
    assert first.exit_code == 0
    part2_source = _program_url(fresh_sekmet, "prog-sud")
    on_pcp = {k for k in history(fresh_sekmet) if _source(fresh_sekmet, k) == part2_source}
    assert any(k[0] == "Condition" for k in on_pcp)  # with consent, the PCP got cl-02's Part 2 data

    # cl-02 revokes both Part 2 consents; its OUD diagnosis is then updated in the clinic's records.
    path = records / "02-oud-buprenorphine-part2.json"
    data = json.loads(path.read_text())
    for record in data["records"]:
        if record["kind"] == "consent":
            record["revoked_at"] = "2026-02-01T10:00:00-05:00"
        if record["kind"] == "diagnosis":
            record["dsm5_text"] = "Opioid use disorder, moderate, in early remission, on maintenance therapy"
    path.write_text(json.dumps(data))
    before = history(fresh_sekmet)
    second = sync(db, partners_file, records)
    after = history(fresh_sekmet)
    new_or_changed = {k for k, n in after.items() if before.get(k) != n}
    assert not {k for k in new_or_changed if _source(fresh_sekmet, k) == part2_source}
    pcp = next(p for p in second.partners if p.partner.id == "pcp").push
    assert pcp is not None
    assert any(client == "cl-02" and ref.startswith("Condition/") for client, w in pcp.withheld for ref in [w.ref])


def _program_url(peer: Peer, program: str) -> str:
    from adapter.fhir import deterministic_id
    from adapter.mappings.context import DEFAULT_FHIR_BASE

    return f"{DEFAULT_FHIR_BASE}/Organization/{deterministic_id('Organization', 'program', program)}"


def _source(peer: Peer, key: tuple[str, str]) -> str | None:
    meta = current(peer, key).get("meta") or {}
    return meta.get("source")


def test_pull_maps_task_answers_and_partner_medications(
    fresh_medplum: Peer, fresh_sekmet: Peer, tmp_path: Path
) -> None:
    partners_file = two_partners(tmp_path, fresh_medplum, fresh_sekmet)
    db = f"sqlite:///{tmp_path / 'sync.db'}"
    records = copy_records(tmp_path)
    first = sync(db, partners_file, records)
    psych_pull = next(p for p in first.partners if p.partner.id == "psych").pull
    assert psych_pull is not None and not psych_pull.failures
    assert psych_pull.own > 0 and not psych_pull.referral_updates  # our own writes are not news
    tasks = [k for k in history(fresh_medplum) if k[0] == "Task"]
    assert tasks
    task = current(fresh_medplum, tasks[0])
    answered = {**task, "status": "rejected", "statusReason": {"text": "no capacity until March"}}
    request(fresh_medplum, "PUT", f"Task/{task['id']}", answered)
    patient = next(k for k in history(fresh_medplum) if k[0] == "Patient")
    request(
        fresh_medplum,
        "POST",
        "MedicationRequest",
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "312938",
                        "display": "sertraline 50 MG Oral Tablet",
                    }
                ]
            },
            "subject": {"reference": f"Patient/{patient[1]}"},
            "authoredOn": "2026-03-01T10:00:00Z",
            "requester": {"display": "Dr. Psychiatrist"},
            "dosageInstruction": [{"text": "50 mg once daily"}],
        },
    )
    second = sync(db, partners_file, records)
    pulled = next(p for p in second.partners if p.partner.id == "psych").pull
    assert pulled is not None
    (update,) = pulled.referral_updates
    assert update["status"] == "declined" and update["reason"] == "no capacity until March"
    (med,) = [r for r in pulled.records if r["kind"] == "reported_medication"]
    assert med["drug"]["rxnorm"] == "312938" and med["dosage_text"] == "50 mg once daily"
    third = sync(db, partners_file, records)  # the cursor moved: nothing new
    again = next(p for p in third.partners if p.partner.id == "psych").pull
    assert again is not None and not again.referral_updates and not again.records


def test_repush_of_a_changed_referral_keeps_the_partners_answer(
    fresh_medplum: Peer, fresh_sekmet: Peer, tmp_path: Path
) -> None:
    partners_file = two_partners(tmp_path, fresh_medplum, fresh_sekmet)
    db = f"sqlite:///{tmp_path / 'sync.db'}"
    records = copy_records(tmp_path)
    assert sync(db, partners_file, records).exit_code == 0
    tasks = [current(fresh_medplum, k) for k in history(fresh_medplum) if k[0] == "Task"]
    task = next(t for t in tasks if t["status"] in ("requested", "received", "accepted"))
    referral_id = task["identifier"][0]["value"]
    answer = {"text": "Seen on 2026-03-06; medication plan sent to the referring clinician"}
    request(fresh_medplum, "PUT", f"Task/{task['id']}", {**task, "status": "completed", "businessStatus": answer})

    # The clinic then changes the referral's priority: the Task is re-pushed with it.
    changed = False
    for path in records.glob("*.json"):
        data = json.loads(path.read_text())
        for record in data.get("records", []):
            if record.get("kind") == "referral" and record["id"] == referral_id:
                record["priority"] = "asap" if record.get("priority") != "asap" else "stat"
                new_priority, changed = record["priority"], True
                path.write_text(json.dumps(data))
    assert changed
    assert sync(db, partners_file, records).exit_code == 0
    held = current(fresh_medplum, ("Task", task["id"]))
    assert held["priority"] == new_priority  # the clinic's change arrived
    assert held["status"] == "completed" and held["businessStatus"] == answer  # the partner's answer stands
    versions = history(fresh_medplum)[("Task", task["id"])]
    assert sync(db, partners_file, records).exit_code == 0
    assert history(fresh_medplum)[("Task", task["id"])] == versions  # unchanged referral: not re-sent
