"""Wire one sync session: the process's HTTP client, one FhirClient and Pusher per partner, the store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from tenacity import Retrying

from adapter.sync.auth import authenticator
from adapter.sync.capabilities import Modes, resolve_modes
from adapter.sync.client import FhirClient, Reply, make_http_client
from adapter.sync.partners import Partner
from adapter.sync.push import Pusher
from adapter.sync.retry import Failure, retry_policy
from adapter.sync.store import open_store

RESOURCE_ID_SID = "sid/resource-id"  # under BH_FHIR_BASE: match key of resources without a business identifier


@dataclass
class Session:
    engine: Engine
    http: httpx.Client
    env: Mapping[str, str]
    fhir_base: str
    base_dir: Path | None = None  # of the partners file: relative key paths resolve against it
    retrying: Callable[[Partner], Callable[[], Retrying]] | None = None  # tests: no-wait policies
    clients: dict[str, FhirClient] = field(default_factory=dict)
    _own_http: bool = False

    @classmethod
    def open(
        cls,
        database_url: str,
        env: Mapping[str, str],
        fhir_base: str,
        *,
        base_dir: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        retrying: Callable[[Partner], Callable[[], Retrying]] | None = None,
    ) -> Session:
        return cls(
            open_store(database_url),
            make_http_client(transport),
            env,
            fhir_base.rstrip("/"),
            base_dir,
            retrying,
            _own_http=True,
        )

    def close(self) -> None:
        if self._own_http:
            self.http.close()
        self.engine.dispose()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def id_system(self) -> str:
        return f"{self.fhir_base}/{RESOURCE_ID_SID}"

    def client(self, partner: Partner) -> FhirClient:
        if partner.id not in self.clients:
            retrying = self.retrying(partner) if self.retrying else (lambda: retry_policy(partner.retry))
            self.clients[partner.id] = FhirClient(
                partner, self.http, authenticator(partner, self.env, base_dir=self.base_dir), retrying=retrying
            )
        return self.clients[partner.id]

    def capability(self, partner: Partner) -> dict[str, Any] | Failure:
        reply = self.client(partner).capabilities()
        if isinstance(reply, Failure):
            return reply
        body = reply.resource()
        if body.get("resourceType") != "CapabilityStatement":
            return Failure("permanent", f"{partner.base_url}/metadata is not a CapabilityStatement")
        return body

    def pusher(self, partner: Partner) -> tuple[Pusher, Modes] | Failure:
        """A Pusher with the modes resolved (the CapabilityStatement is read only when a mode is `auto`)."""
        capability: dict[str, Any] | None = None
        if partner.write_mode == "auto" or partner.ids != "client-ids":  # conditional: which searches it has
            found = self.capability(partner)
            if isinstance(found, Failure):
                return found
            capability = found
        modes = resolve_modes(partner, capability)
        pusher = Pusher(
            self.client(partner),
            self.engine,
            modes.write_mode,
            modes.id_mode,
            self.id_system,
            can_search=modes.can_search,
            allows_update_create=modes.allows_update_create,
        )
        return pusher, modes

    def pushers(self, partners: Sequence[Partner]) -> tuple[dict[str, Pusher], dict[str, Modes | Failure]]:
        pushers: dict[str, Pusher] = {}
        modes: dict[str, Modes | Failure] = {}
        for partner in partners:
            built = self.pusher(partner)
            if isinstance(built, Failure):
                modes[partner.id] = built
            else:
                pushers[partner.id], modes[partner.id] = built
        return pushers, modes


def reply_json(reply: Reply | Failure) -> dict[str, Any]:
    return reply.resource() if isinstance(reply, Reply) else {}
