"""API tokens: bearer secrets stored hashed, each bound to a role and, for partners, to a partner and its purposes.

A token is ``<token id>.<secret part>``. The id is public (logs, audit, `tokens list`, revocation); the whole
token is shown once, at creation, and only its SHA-256 is stored. The secret part comes from
``secrets.token_urlsafe`` (256 bits), so a plain hash is enough (no password stretching needed), and the
stored hash is compared with ``hmac.compare_digest``. The row is found by its id, never by the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Column, Engine, MetaData, String, Table, Text, select, update
from sqlalchemy.exc import IntegrityError

from adapter.errors import NotFoundError, UsageError
from adapter.tables import create_tables

Role = Literal["clinic-admin", "ingest", "partner"]
ROLES: tuple[Role, ...] = get_args(Role)
ID_PREFIX = "bh"  # token ids read `bh-...`: easy to spot in a leaked config or log line

metadata = MetaData()

tokens_table = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(40), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("role", String(20), nullable=False),
    Column("partner_id", String(64)),
    Column("purposes", Text, nullable=False),  # JSON list of v3-ActReason codes
    Column("label", String(200)),
    Column("created_at", String(40), nullable=False),
    Column("expires_at", String(40)),
    Column("revoked_at", String(40)),
)

# Server keys (e.g. the one that signs the partner API's page tokens): created once, kept in the database, so
# they survive restarts and every worker process on the same database shares them.
keys_table = Table(
    "api_keys",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("key_hex", String(128), nullable=False),
)


@dataclass(frozen=True)
class Token:
    """A token as stored, without its secret."""

    token_id: str
    role: Role
    partner_id: str | None
    purposes: tuple[str, ...]
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> Literal["active", "revoked", "expired"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


Verdict = Literal["ok", "malformed", "unknown", "revoked", "expired"]


@dataclass(frozen=True)
class Check:
    """What checking a presented secret found: `token` is set whenever the id was known (for the audit)."""

    verdict: Verdict
    token: Token | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _token(row: object) -> Token:
    m = row._mapping  # type: ignore[attr-defined]
    created = _time(m["created_at"])
    assert created is not None  # noqa: S101 - the column is NOT NULL
    return Token(
        token_id=m["token_id"],
        role=m["role"],
        partner_id=m["partner_id"],
        purposes=tuple(json.loads(m["purposes"])),
        label=m["label"],
        created_at=created,
        expires_at=_time(m["expires_at"]),
        revoked_at=_time(m["revoked_at"]),
    )


class TokenStore:
    """Tokens in the adapter's database (table created on first use)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(metadata, engine)

    def create(
        self,
        role: str,
        now: datetime,
        *,
        partner_id: str | None = None,
        purposes: Sequence[str] = (),
        expires_at: datetime | None = None,
        label: str | None = None,
    ) -> tuple[Token, str]:
        """A new token and its secret. The secret is returned here once and stored only as a hash."""
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if role == "partner" and (not partner_id or not purposes):
            raise UsageError("a partner token needs its partner id and at least one purpose of use")
        if role != "partner" and (partner_id or purposes):
            raise UsageError("only partner tokens carry a partner id and purposes of use")
        if expires_at is not None and expires_at.tzinfo is None:
            raise UsageError("the expiry needs a timezone, e.g. 2026-12-31T00:00:00+00:00")
        token_id = f"{ID_PREFIX}-{secrets.token_hex(6)}"
        secret = f"{token_id}.{secrets.token_urlsafe(32)}"
        row = {
            "token_id": token_id,
            "secret_sha256": _hash(secret),
            "role": role,
            "partner_id": partner_id,
            "purposes": json.dumps(list(dict.fromkeys(purposes))),
            "label": label,
            "created_at": now.isoformat(),
            "expires_at": expires_at.isoformat() if expires_at else None,
            "revoked_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(tokens_table.insert(), [row])
        return self.get(token_id), secret

    def server_key(self, name: str) -> bytes:
        """The 32-byte server key `name`, created on first use (two processes racing agree on the first row)."""
        with self.engine.begin() as conn:
            found = conn.scalar(select(keys_table.c.key_hex).where(keys_table.c.name == name))
            if found is None:
                try:
                    with conn.begin_nested():
                        conn.execute(keys_table.insert(), [{"name": name, "key_hex": secrets.token_hex(32)}])
                except IntegrityError:
                    pass  # another process created it first
                found = conn.scalar(select(keys_table.c.key_hex).where(keys_table.c.name == name))
        return bytes.fromhex(str(found))

    def get(self, token_id: str) -> Token:
        with self.engine.connect() as conn:
            row = conn.execute(select(tokens_table).where(tokens_table.c.token_id == token_id)).first()
        if row is None:
            raise NotFoundError(f"no token {token_id!r}")
        return _token(row)

    def revoke(self, token_id: str, now: datetime) -> Token:
        """Revoke a token (idempotent: revoking twice keeps the first time)."""
        token = self.get(token_id)
        if token.revoked_at is None:
            with self.engine.begin() as conn:
                conn.execute(
                    update(tokens_table).where(tokens_table.c.token_id == token_id).values(revoked_at=now.isoformat())
                )
        return self.get(token_id)

    def tokens(self) -> list[Token]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tokens_table).order_by(tokens_table.c.created_at, tokens_table.c.token_id))
            return [_token(r) for r in rows]

    def check(self, presented: str, now: datetime) -> Check:
        """Who a presented secret belongs to, if anyone, and whether it may be used at `now`."""
        token_id, dot, rest = presented.partition(".")
        if not dot or not rest or not token_id.startswith(f"{ID_PREFIX}-") or len(token_id) > 40:
            return Check("malformed")
        with self.engine.connect() as conn:
            row = conn.execute(select(tokens_table).where(tokens_table.c.token_id == token_id)).first()
        if row is None:
            return Check("unknown")
        if not hmac.compare_digest(row._mapping["secret_sha256"], _hash(presented)):
            return Check("unknown")  # a known id with a wrong secret: say no more than for an unknown one
        token = _token(row)
        state = token.state(now)
        return Check("ok" if state == "active" else state, token)
