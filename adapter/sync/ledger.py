"""What each partner holds of ours: per resource, the hash of the content it acknowledged.

* ``sent``      the partner acknowledged this content: sending it again would only add a version.
* ``sending``   written (committed) just before the request goes out. Found after a crash or an ambiguous
                failure, it means "may have arrived": the worker re-reads the partner's copy before sending.
* ``rejected``  the partner refused this content with a permanent error.

On PostgreSQL, :func:`resource_locks` takes session advisory locks on the resources a worker is about to
send (in sorted order, so two workers never deadlock): a directory resource shared by many clients' charts is
then sent by one worker while the other waits and finds it ``sent``. SQLite has one writer at a time and needs
none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, bindparam, select, text

from adapter.sync.plan import Key
from adapter.sync.store import deliveries, is_postgres, upsert

_IN_BATCH = 400  # keys per IN (...) list


@dataclass(frozen=True)
class Delivery:
    state: str
    content_hash: str
    remote_id: str | None
    version_id: str | None


def lookup(engine: Engine, partner_id: str, keys: Sequence[Key]) -> dict[Key, Delivery]:
    """The ledger rows of `keys`: one query per resource type and slice of ids, each an equality on the whole
    primary key's prefix. (A row-value IN on (type, id) used only `partner_id` of the index on SQLite and scanned
    every row the partner has.)"""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, []).append(rid)
    found: dict[Key, Delivery] = {}
    with engine.connect() as conn:
        for rtype, ids in by_type.items():
            for start in range(0, len(ids), _IN_BATCH):
                rows = conn.execute(
                    _lookup_statement(),
                    {"partner_id": partner_id, "resource_type": rtype, "ids": ids[start : start + _IN_BATCH]},
                )
                for r in rows:
                    found[(rtype, r.resource_id)] = Delivery(r.state, r.content_hash, r.remote_id, r.version_id)
    return found


@lru_cache(maxsize=1)
def _lookup_statement() -> Any:
    return select(
        deliveries.c.resource_id,
        deliveries.c.state,
        deliveries.c.content_hash,
        deliveries.c.remote_id,
        deliveries.c.version_id,
    ).where(
        deliveries.c.partner_id == bindparam("partner_id"),
        deliveries.c.resource_type == bindparam("resource_type"),
        deliveries.c.resource_id.in_(bindparam("ids", expanding=True)),
    )


@dataclass(frozen=True)
class Mark:
    key: Key
    content_hash: str
    remote_id: str | None = None
    version_id: str | None = None
    item_id: int | None = None  # the outbox item that sent it


def record(engine: Engine, partner_id: str, state: str, marks: Iterable[Mark], now: float) -> None:
    """Set the state of many resources in one transaction (remote ids are kept when a mark has none)."""
    rows = [
        {
            "partner_id": partner_id,
            "resource_type": m.key[0],
            "resource_id": m.key[1],
            "state": state,
            "content_hash": m.content_hash,
            "remote_id": m.remote_id,
            "version_id": m.version_id,
            "item_id": m.item_id,
            "updated_at": now,
        }
        for m in marks
    ]
    if not rows:
        return
    with engine.begin() as conn:
        # Rows without a remote id keep the one already known (a `sending` mark must not forget it).
        with_remote = [r for r in rows if r["remote_id"] is not None]
        without = [r for r in rows if r["remote_id"] is None]
        upsert(
            conn, deliveries, with_remote, ["state", "content_hash", "remote_id", "version_id", "item_id", "updated_at"]
        )
        upsert(conn, deliveries, without, ["state", "content_hash", "item_id", "updated_at"])


def remote_refs(engine: Engine, partner_id: str, keys: Sequence[Key]) -> dict[str, str]:
    """ "Type/adapter-id" -> "Type/partner-id" for resources the partner holds under its own id."""
    return {
        f"{k[0]}/{k[1]}": f"{k[0]}/{d.remote_id}"
        for k, d in lookup(engine, partner_id, keys).items()
        if d.remote_id and d.remote_id != k[1]
    }


def lock_id(partner_id: str, key: Key) -> int:
    """A signed 64-bit advisory-lock id for (partner, resource)."""
    digest = hashlib.blake2b(f"{partner_id}|{key[0]}/{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def resource_locks(engine: Engine, partner_id: str, keys: Iterable[Key]) -> Iterator[None]:
    """Hold advisory locks on the resources for the block (PostgreSQL; a no-op on SQLite)."""
    if not is_postgres(engine):
        yield
        return
    ids = sorted({lock_id(partner_id, k) for k in keys})
    with engine.connect() as conn:
        try:
            for lid in ids:  # one by one in sorted order: two workers lock shared rows in the same order
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lid})
            conn.commit()
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
            conn.commit()
