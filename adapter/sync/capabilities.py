"""Read a partner's CapabilityStatement: which write mode and id policy `auto` means for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapter.sync.partners import Partner
from adapter.sync.plan import IdMode
from adapter.sync.push import WriteMode


@dataclass(frozen=True)
class Modes:
    write_mode: WriteMode
    id_mode: IdMode
    why: str  # one line for `partners check` and the logs
    # From the CapabilityStatement (None: not read, assume everything is allowed)
    search_params: Mapping[str, frozenset[str]] | None = field(default=None, repr=False)
    update_create: frozenset[str] | None = field(default=None, repr=False)

    def can_search(self, resource_type: str, param: str) -> bool:
        if self.search_params is None:
            return True
        return param in self.search_params.get(resource_type, frozenset())

    def allows_update_create(self, resource_type: str) -> bool:
        return self.update_create is None or resource_type in self.update_create


def _rest(capability: Mapping[str, Any]) -> Mapping[str, Any]:
    for rest in capability.get("rest", []) or []:
        if rest.get("mode", "server") == "server":
            return rest  # type: ignore[no-any-return]
    return {}


def system_interactions(capability: Mapping[str, Any]) -> set[str]:
    return {i.get("code") for i in _rest(capability).get("interaction", []) or [] if i.get("code")}


def resource_entries(capability: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {r["type"]: r for r in _rest(capability).get("resource", []) or [] if r.get("type")}


def resolve_modes(partner: Partner, capability: Mapping[str, Any] | None) -> Modes:
    """`auto` -> transaction if the server supports it, else batch, else one request per resource; client ids
    when every declared resource type allows update-as-create (`updateCreate`), else conditional updates."""
    reasons = []
    write_mode: WriteMode
    if partner.write_mode != "auto":
        write_mode = partner.write_mode
        reasons.append(f"write mode {write_mode} (partners file)")
    else:
        interactions = system_interactions(capability or {})
        write_mode = (
            "transaction" if "transaction" in interactions else "batch" if "batch" in interactions else "single"
        )
        reasons.append(
            f"write mode {write_mode} (CapabilityStatement: {sorted(interactions) or 'no system interactions'})"
        )
    id_mode: IdMode
    if partner.ids != "auto":
        id_mode = partner.ids
        reasons.append(f"ids {id_mode} (partners file)")
    else:
        entries = resource_entries(capability or {})
        no_update_create = sorted(t for t, r in entries.items() if partner.pushes(t) and not r.get("updateCreate"))
        id_mode = "conditional" if no_update_create else "client-ids"
        reasons.append(
            f"ids {id_mode} ("
            + (
                f"no updateCreate for {', '.join(no_update_create[:5])}"
                if no_update_create
                else "updateCreate everywhere"
            )
            + ")"
        )
    if write_mode == "batch" and id_mode == "conditional":
        # Batch entries cannot reference each other's urn:uuid fullUrls: send one by one, in dependency order.
        write_mode = "single"
        reasons.append("batch + conditional -> single requests")
    if capability is None:
        return Modes(write_mode, id_mode, "; ".join(reasons))
    entries = resource_entries(capability)
    params = {t: frozenset(str(p.get("name")) for p in r.get("searchParam", []) or []) for t, r in entries.items()}
    update_create = frozenset(t for t, r in entries.items() if r.get("updateCreate"))
    return Modes(write_mode, id_mode, "; ".join(reasons), params, update_create)
