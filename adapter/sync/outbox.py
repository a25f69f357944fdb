"""The outbox: durable units of work, one per (partner, client), with at-least-once semantics.

States::

    pending --claim--> in-flight --ok--> sent
                          |  \\--retryable failure--> failed --(next_attempt_at)--> claimed again
                          |   \\--permanent failure or attempts used up--> dead (partner's OperationOutcome kept)
                          \\--worker died (lease expired, or its process is gone)--> claimed again

A claim is one UPDATE of rows chosen with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers on
one or many machines drain the same outbox without taking the same item; SQLite ignores the clause and
serializes writers itself (one worker per SQLite file). ``attempts`` counts claims, so an item that kills its
worker every time still ends up dead instead of looping forever.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, and_, delete, func, or_, select, update

from adapter.errors import UsageError
from adapter.sync.store import outbox

State = Literal["pending", "in-flight", "sent", "failed", "dead"]
STATES: tuple[State, ...] = ("pending", "in-flight", "sent", "failed", "dead")
OPEN_STATES = ("pending", "failed")


@dataclass(frozen=True)
class Item:
    id: int
    partner_id: str
    client_id: str
    state: State
    attempts: int
    next_attempt_at: float
    lease_until: float | None
    owner: str | None
    content_hash: str | None
    last_status: int | None
    last_error: str | None
    last_outcome: dict[str, Any] | None
    report: dict[str, Any] | None
    created_at: float
    updated_at: float


def _item(row: Any) -> Item:
    m = row._mapping
    return Item(
        id=m["id"],
        partner_id=m["partner_id"],
        client_id=m["client_id"],
        state=m["state"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        lease_until=m["lease_until"],
        owner=m["owner"],
        content_hash=m["content_hash"],
        last_status=m["last_status"],
        last_error=m["last_error"],
        last_outcome=json.loads(m["last_outcome"]) if m["last_outcome"] else None,
        report=json.loads(m["report"]) if m["report"] else None,
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def worker_name() -> str:
    """host:pid: lets a restarted worker on the same host take back the items of a dead one at once."""
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(engine: Engine, partner_id: str, client_ids: Sequence[str], now: float) -> int:
    """One pending item per (partner, client) unless one is already waiting (pending or failed: it will pick
    up the newest records when it runs). Returns how many were added."""
    with engine.begin() as conn:
        waiting = set(
            conn.scalars(
                select(outbox.c.client_id).where(outbox.c.partner_id == partner_id, outbox.c.state.in_(OPEN_STATES))
            )
        )
        rows = [
            {
                "partner_id": partner_id,
                "client_id": c,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for c in dict.fromkeys(client_ids)
            if c not in waiting
        ]
        if rows:
            conn.execute(outbox.insert(), rows)
    return len(rows)


def claim(
    engine: Engine,
    owner: str,
    now: float,
    *,
    limit: int = 1,
    lease_s: float = 300.0,
    partner_ids: Sequence[str] | None = None,
    exclude: Sequence[int] = (),
) -> list[Item]:
    """Take up to `limit` due items (pending, failed and due, or in-flight with an expired lease), except the
    ids in `exclude` (those this run already handled: a failed item waits for the next run)."""
    due = or_(
        and_(outbox.c.state.in_(OPEN_STATES), outbox.c.next_attempt_at <= now),
        and_(outbox.c.state == "in-flight", outbox.c.lease_until < now),
    )
    chosen = select(outbox.c.id).where(due)
    if partner_ids is not None:
        chosen = chosen.where(outbox.c.partner_id.in_(list(partner_ids)))
    if exclude:
        chosen = chosen.where(outbox.c.id.not_in(list(exclude)))
    chosen = chosen.order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit).with_for_update(skip_locked=True)
    with engine.begin() as conn:
        # Two statements in one transaction, not UPDATE ... WHERE id IN (SELECT ... SKIP LOCKED): PostgreSQL may
        # re-run such a subquery per row, and rows this very UPDATE changed are then skipped, so LIMIT stops
        # limiting. The rows selected stay locked until the commit.
        ids = list(conn.scalars(chosen))
        if not ids:
            return []
        rows = conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), due)  # `due` again: SQLite takes no row locks
            .values(
                state="in-flight",
                owner=owner,
                lease_until=now + lease_s,
                attempts=outbox.c.attempts + 1,
                updated_at=now,
            )
            .returning(*outbox.c)
        )
        return sorted((_item(r) for r in rows), key=lambda i: i.id)


def release_dead_owners(engine: Engine, now: float, host: str | None = None) -> int:
    """Expire the leases of in-flight items whose worker process on this host no longer exists (a worker
    killed with SIGKILL), so they are claimed again now rather than when the lease runs out."""
    host = host or socket.gethostname()
    with engine.begin() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.owner).where(outbox.c.state == "in-flight", outbox.c.owner.like(f"{host}:%"))
        ).all()
        gone = [row.id for row in rows if not _alive(row.owner.rsplit(":", 1)[-1])]
        if gone:
            conn.execute(update(outbox).where(outbox.c.id.in_(gone)).values(lease_until=now - 1, updated_at=now))
    return len(gone)


def _alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return True  # not ours to judge: wait for the lease
    if pid == os.getpid():
        return False  # our own leftovers from before a restart in this process cannot be running
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _finish(engine: Engine, item: Item, now: float, **values: Any) -> bool:
    """Update an item this worker still owns; False when the lease was lost (another worker took it)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(outbox)
            .where(outbox.c.id == item.id, outbox.c.owner == item.owner, outbox.c.state == "in-flight")
            .values(updated_at=now, lease_until=None, **values)
        )
        return bool(result.rowcount)


def complete(engine: Engine, item: Item, now: float, content_hash: str, report: dict[str, Any]) -> bool:
    return _finish(
        engine,
        item,
        now,
        state="sent",
        content_hash=content_hash,
        report=json.dumps(report),
        last_status=None,
        last_error=None,
        last_outcome=None,
    )


def defer(engine: Engine, item: Item, now: float) -> bool:
    """Give an item back untouched (pending, due now, this claim not counted): this run cannot do it yet, e.g.
    the records it names arrived after the run read the store."""
    return _finish(engine, item, now, state="pending", next_attempt_at=now, attempts=max(item.attempts - 1, 0))


def reschedule(
    engine: Engine,
    item: Item,
    now: float,
    *,
    next_attempt_at: float,
    max_attempts: int,
    error: str,
    status: int | None,
    outcome: dict[str, Any] | None,
    report: dict[str, Any] | None = None,
) -> State:
    """A retryable failure: back to `failed` with a later next attempt, or `dead` when attempts are used up."""
    state: State = "dead" if item.attempts >= max_attempts else "failed"
    _finish(
        engine,
        item,
        now,
        state=state,
        next_attempt_at=next_attempt_at,
        last_error=error,
        last_status=status,
        last_outcome=json.dumps(outcome) if outcome else None,
        report=json.dumps(report) if report else None,
    )
    return state


def bury(
    engine: Engine,
    item: Item,
    now: float,
    *,
    error: str,
    status: int | None,
    outcome: dict[str, Any] | None,
    report: dict[str, Any] | None = None,
) -> None:
    """A permanent failure: `dead`, keeping the partner's OperationOutcome for whoever looks at it."""
    _finish(
        engine,
        item,
        now,
        state="dead",
        last_error=error,
        last_status=status,
        last_outcome=json.dumps(outcome) if outcome else None,
        report=json.dumps(report) if report else None,
    )


def get(engine: Engine, item_id: int) -> Item:
    with engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.id == item_id)).first()
    if row is None:
        raise UsageError(f"no outbox item {item_id}")
    return _item(row)


def items(engine: Engine, *, state: str | None = None, partner_id: str | None = None, limit: int = 1000) -> list[Item]:
    stmt = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(outbox.c.state == state)
    if partner_id is not None:
        stmt = stmt.where(outbox.c.partner_id == partner_id)
    with engine.connect() as conn:
        return [_item(r) for r in conn.execute(stmt)]


def counts(engine: Engine, partner_id: str | None = None) -> dict[str, int]:
    stmt = select(outbox.c.state, func.count()).group_by(outbox.c.state)
    if partner_id is not None:
        stmt = stmt.where(outbox.c.partner_id == partner_id)
    with engine.connect() as conn:
        found = {state: int(n) for state, n in conn.execute(stmt).all()}
    return {s: found.get(s, 0) for s in STATES}


def retry(engine: Engine, item_id: int, now: float) -> Item:
    """Put a dead or failed item back to pending, attempts reset (after the cause was fixed)."""
    item = get(engine, item_id)
    if item.state not in ("dead", "failed"):
        raise UsageError(f"outbox item {item_id} is {item.state}: only dead or failed items can be retried")
    with engine.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == item_id)
            .values(state="pending", attempts=0, next_attempt_at=now, owner=None, lease_until=None, updated_at=now)
        )
    return get(engine, item_id)


def purge_dead(engine: Engine, partner_id: str | None = None) -> int:
    stmt = delete(outbox).where(outbox.c.state == "dead")
    if partner_id is not None:
        stmt = stmt.where(outbox.c.partner_id == partner_id)
    with engine.begin() as conn:
        return int(conn.execute(stmt).rowcount)
