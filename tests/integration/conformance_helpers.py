"""Build one transaction per mapped client that both peers accept, and compare what a peer stored with what was sent.

Pure functions except `read_stored` and `snapshot`, which talk to a peer through tests.servers.client.
A resource key is the literal reference "Type/id".
"""

from __future__ import annotations

import copy
import decimal
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tests.servers.client import HasBaseUrl, Resource, errors, read_location, request, resource_of, search_all

# What the server owns on read-back: the id it assigned and the version bookkeeping. meta.profile,
# meta.source and meta.security are ours and must survive.
SERVER_META = ("versionId", "lastUpdated")


def key(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def reference_holders(node: Any) -> Iterator[dict[str, Any]]:
    """Every Reference in a resource tree: each dict with a string `reference` (Reference is the only R4
    datatype with an element of that name, so this finds CarePlan.activity.reference.reference too)."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from reference_holders(value)
    elif isinstance(node, list):
        for value in node:
            yield from reference_holders(value)


def with_references(resource: Mapping[str, Any], mapping: Mapping[str, str]) -> Resource:
    """A deep copy whose references found in `mapping` are replaced; others are kept as they are."""
    copied: Resource = copy.deepcopy(dict(resource))
    for holder in reference_holders(copied):
        holder["reference"] = mapping.get(holder["reference"], holder["reference"])
    return copied


def create_transaction(resources: Sequence[Mapping[str, Any]]) -> Resource:
    """One transaction of POST entries, fullUrl urn:uuid:<our id>, internal references Type/<id> -> urn:uuid:<id>.

    Creates do not count toward Medplum's 50-update limit, so every client fits in one transaction; the
    server assigns the ids and resolves the urn:uuid references to them (FHIR R4 http.html#trules).
    The adapter's ids are UUIDs (uuid5), hence valid urn:uuid values.
    """
    urns = {key(r): f"urn:uuid:{r['id']}" for r in resources}
    entries = []
    for resource in resources:
        body = with_references(resource, urns)
        del body["id"]  # a create ignores it; leaving it out says the server picks the id
        entries.append(
            {
                "fullUrl": urns[key(resource)],
                "resource": body,
                "request": {"method": "POST", "url": body["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def update_transaction(resources: Sequence[Mapping[str, Any]]) -> Resource:
    """One transaction of PUT Type/<our id> entries (update-as-create): references stay as they are."""
    entries = [
        {
            "fullUrl": f"urn:uuid:{r['id']}",
            "resource": copy.deepcopy(dict(r)),
            "request": {"method": "PUT", "url": key(r)},
        }
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def assigned_keys(sent: Sequence[Mapping[str, Any]], response: Mapping[str, Any]) -> dict[str, str]:
    """Our "Type/id" -> the server's "Type/id", from the transaction-response (entries are in request order)."""
    answers = response.get("entry", [])
    if len(answers) != len(sent):
        raise AssertionError(f"{len(sent)} entries sent, {len(answers)} answered")
    mapping = {}
    for resource, answer in zip(sent, answers, strict=True):
        location = answer.get("response", {}).get("location")
        if not location:
            raise AssertionError(f"no location for {key(resource)}: {answer.get('response')}")
        mapping[key(resource)] = location_key(location)
    return mapping


def location_key(location: str) -> str:
    """ "Type/id" of a response location: relative or absolute, with or without /_history/<vid>."""
    path = location.split("/_history/")[0].rstrip("/")
    resource_type, resource_id = path.split("/")[-2:]
    return f"{resource_type}/{resource_id}"


def comparable(resource: Mapping[str, Any], mapping: Mapping[str, str] | None = None) -> Resource:
    """Without what the server owns (id, meta.versionId, meta.lastUpdated; meta itself when nothing else is
    left), references mapped to the server's ids."""
    result = with_references(resource, mapping or {})
    result.pop("id", None)
    meta = {k: v for k, v in result.pop("meta", {}).items() if k not in SERVER_META}
    if meta:
        result["meta"] = meta
    return result


def differences(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Where two JSON trees differ, one line per place; numbers compare by value (14.50 == 14.5)."""
    if _is_number(sent) and _is_number(stored):
        return [] if decimal.Decimal(str(sent)) == decimal.Decimal(str(stored)) else [f"{path}: {sent} != {stored}"]
    if isinstance(sent, dict) and isinstance(stored, dict):
        found = []
        for name in [*sent, *(k for k in stored if k not in sent)]:
            if name not in stored:
                found.append(f"{path}.{name}: dropped")
            elif name not in sent:
                found.append(f"{path}.{name}: added {stored[name]!r:.120}")
            else:
                found += differences(sent[name], stored[name], f"{path}.{name}")
        return found
    if isinstance(sent, list) and isinstance(stored, list):
        if len(sent) != len(stored):
            return [f"{path}: {len(sent)} items sent, {len(stored)} stored"]
        return [
            line
            for i, (a, b) in enumerate(zip(sent, stored, strict=True))
            for line in differences(a, b, f"{path}[{i}]")
        ]
    return [] if sent == stored and type(sent) is type(stored) else [f"{path}: {sent!r:.120} != {stored!r:.120}"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def read_stored(
    peer: HasBaseUrl, sent: Sequence[Mapping[str, Any]], response: Mapping[str, Any]
) -> list[tuple[str, list[str]]]:
    """Reads every entry back by the location the transaction-response gave; (our key, differences) for each
    resource whose stored content differs from what was sent."""
    mapping = assigned_keys(sent, response)
    changed = []
    for resource, answer in zip(sent, response["entry"], strict=True):
        stored = read_location(peer, answer["response"]["location"])
        found = differences(comparable(resource, mapping), comparable(stored))
        if stored.get("resourceType") != resource["resourceType"] or key(stored) != mapping[key(resource)]:
            found.append(f"read {key(stored)} at {answer['response']['location']}")
        if found:
            changed.append((key(resource), found))
    return changed


def snapshot(peer: HasBaseUrl, resource_types: Sequence[str]) -> dict[str, str]:
    """Every stored resource of these types: "Type/id" -> versionId (what a rolled-back write would change)."""
    return {
        key(found): str(found.get("meta", {}).get("versionId"))
        for resource_type in sorted(set(resource_types))
        for found in search_all(peer, resource_type, {"_count": "200"})
    }


def history_total(peer: HasBaseUrl) -> int:
    """How many changes the peer's system history holds (a rolled-back write leaves none)."""
    return int(resource_of(request(peer, "GET", "_history", expect={200}))["total"])


def issue_lines(outcome: Mapping[str, Any]) -> list[str]:
    """The error issues of an OperationOutcome as "expression: text" lines, for failure messages."""
    lines = []
    for issue in errors(outcome):
        text = issue.get("details", {}).get("text") or issue.get("diagnostics") or issue.get("code")
        lines.append(f"{','.join(issue.get('expression', [])) or '?'}: {text}")
    return lines
