"""Outbox states on SQLite: enqueue coalesces, claims are exclusive, leases expire, retry and purge."""

from __future__ import annotations

import os

from adapter.sync import outbox
from adapter.sync.store import open_store


def test_enqueue_coalesces_waiting_items(db_url: str) -> None:
    engine = open_store(db_url)
    assert outbox.enqueue(engine, "p", ["a", "b", "a"], 0) == 2
    assert outbox.enqueue(engine, "p", ["a", "b", "c"], 1) == 1  # a and b already wait
    assert outbox.enqueue(engine, "q", ["a"], 1) == 1  # per partner
    assert outbox.counts(engine)["pending"] == 4


def test_claim_is_exclusive_and_leases_expire(db_url: str) -> None:
    engine = open_store(db_url)
    outbox.enqueue(engine, "p", ["a", "b"], 0)
    first = outbox.claim(engine, "w1", 10, limit=1, lease_s=60)
    second = outbox.claim(engine, "w2", 10, limit=5, lease_s=60)
    assert len(first) == 1 and len(second) == 1 and first[0].id != second[0].id
    assert outbox.claim(engine, "w3", 20) == []  # both in flight
    again = outbox.claim(engine, "w3", 100, limit=5)  # leases (60 s) expired
    assert {i.id for i in again} == {first[0].id, second[0].id}
    assert all(i.attempts == 2 and i.owner == "w3" for i in again)
    assert not outbox.complete(engine, first[0], 101, "h", {})  # w1 lost its lease: cannot complete
    assert outbox.complete(engine, again[0], 101, "h", {"sent": 1})
    assert outbox.get(engine, again[0].id).state == "sent"


def test_dead_worker_items_are_released_at_once(db_url: str) -> None:
    engine = open_store(db_url)
    outbox.enqueue(engine, "p", ["a"], 0)
    import socket

    (item,) = outbox.claim(engine, f"{socket.gethostname()}:999999999", 0, lease_s=3600)
    assert outbox.claim(engine, "w", 1) == []
    assert outbox.release_dead_owners(engine, 1) == 1  # pid 999999999 does not exist
    assert [i.id for i in outbox.claim(engine, f"{socket.gethostname()}:{os.getpid()}", 2)] == [item.id]


def test_reschedule_retry_and_purge(db_url: str) -> None:
    engine = open_store(db_url)
    outbox.enqueue(engine, "p", ["a"], 0)
    (item,) = outbox.claim(engine, "w", 0)
    assert (
        outbox.reschedule(
            engine, item, 1, next_attempt_at=50, max_attempts=2, error="HTTP 503", status=503, outcome=None
        )
        == "failed"
    )
    assert outbox.claim(engine, "w", 10) == []  # not due yet
    (item,) = outbox.claim(engine, "w", 60)
    assert (
        outbox.reschedule(
            engine,
            item,
            61,
            next_attempt_at=99,
            max_attempts=2,
            error="HTTP 503",
            status=503,
            outcome={"resourceType": "OperationOutcome"},
        )
        == "dead"
    )
    dead = outbox.get(engine, item.id)
    assert dead.state == "dead" and dead.last_outcome == {"resourceType": "OperationOutcome"}
    assert outbox.retry(engine, item.id, 100).state == "pending"
    (item,) = outbox.claim(engine, "w", 100)
    outbox.bury(engine, item, 101, error="HTTP 400", status=400, outcome=None)
    assert outbox.purge_dead(engine) == 1 and outbox.items(engine) == []
