"""Pure helpers of the push: entries with their content hash, dependency order, chunks, Bundle bytes, and
reading a batch/transaction response. No I/O.

Bundles are assembled from each resource's bytes, serialized once (``adapter.fhir.dumps``): the bytes that are
hashed are the bytes that are sent, and nothing goes through fhir.resources on the hot path
(shared/reference/performance.md §3: that alone cut Bundle throughput from 11x to 1.9x single POSTs).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import orjson

from adapter.fhir import Resource, dumps
from adapter.schema.definitions import elements

Key = tuple[str, str]  # (resourceType, id)
IdMode = Literal["client-ids", "conditional"]
# Directory resources may already exist at the partner under its own ids: never overwrite theirs, create ours
# only when nothing carries our identifier (If-None-Exist).
CREATE_ONLY_TYPES = frozenset({"Practitioner", "Organization", "PractitionerRole", "Location"})


@dataclass(frozen=True, slots=True)
class Entry:
    resource: Resource  # as released; shared and immutable: rebuild, never edit
    body: bytes  # dumps(resource)
    content_hash: str

    @property
    def key(self) -> Key:
        return (self.resource["resourceType"], self.resource["id"])

    @property
    def ref(self) -> str:
        return f"{self.resource['resourceType']}/{self.resource['id']}"


def entry(resource: Resource) -> Entry:
    body = dumps(resource)
    return Entry(resource, body, hashlib.sha256(body).hexdigest())


def content_hash(entries: Iterable[Entry]) -> str:
    """One hash for what an item released: the sorted hashes of its entries."""
    digest = hashlib.sha256()
    for h in sorted(e.content_hash for e in entries):
        digest.update(h.encode())
    return digest.hexdigest()


def references(node: Any) -> Iterator[str]:
    """Every `reference` string in a resource (contained and nested included). JSON-shaped input: exact dict,
    list and str types (checked with `type`, the push's hot path walks every resource)."""
    stack = [node]
    while stack:
        item = stack.pop()
        values = item.values() if type(item) is dict else item
        if type(item) is dict:
            ref = item.get("reference")
            if type(ref) is str:
                yield ref
        for value in values:
            kind = type(value)
            if kind is dict or kind is list:
                stack.append(value)


# A member named "reference" with a string value, in the compact JSON that adapter.fhir.dumps (orjson) writes.
# Inside a JSON string every '"' is escaped, so a '"' right after '{' or ',' only ever opens a member name: such
# a match is a real "reference" member at any depth, never text inside a value. (The literal prefix lets the
# regex engine skip ahead; the byte before it is checked in Python.)
_REFERENCE_MEMBER = re.compile(rb'"reference":"([^"\\]*(?:\\.[^"\\]*)*)"')


def body_references(body: bytes) -> list[str]:
    """Every `reference` string of a resource, read from its serialized bytes (``Entry.body``): the same strings
    as :func:`references` of the resource, from a C-speed scan instead of a Python walk."""
    found = []
    for match in _REFERENCE_MEMBER.finditer(body):
        if body[match.start() - 1] in b"{,":
            raw = match.group(1)
            found.append(orjson.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode("utf-8"))
    return found


def ref_key(reference: str) -> Key | None:
    """("Type", "id") of a relative literal reference ("Type/id" or "Type/id/_history/v"); None otherwise."""
    parts = reference.split("/_history/")[0].split("/")
    if len(parts) != 2 or not parts[0][:1].isupper() or not parts[1]:
        return None
    return (parts[0], parts[1])


def dependency_groups(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Entries grouped by reference cycles (strongly connected components), the groups in dependency order:
    referenced resources come in an earlier group or the same one. A partner that checks references (HAPI does)
    then finds every target in the same transaction or an earlier one; a cycle (CarePlan.activity <->
    ServiceRequest.basedOn) must never be split across transactions."""
    index = {e.key: i for i, e in enumerate(entries)}
    deps = [
        sorted({index[k] for r in body_references(e.body) if (k := ref_key(r)) in index} - {index[e.key]})
        for e in entries
    ]
    # Tarjan's algorithm, iterative; components come out dependencies first.
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    groups: list[list[Entry]] = []
    for root in range(len(entries)):
        if root in order:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                order[node] = low[node] = len(order)
                stack.append(node)
                on_stack.add(node)
            if child < len(deps[node]):
                work.append((node, child + 1))
                target = deps[node][child]
                if target not in order:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], order[target])
                continue
            for target in deps[node]:
                if target in on_stack:
                    low[node] = min(low[node], low[target])
            if low[node] == order[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                groups.append([entries[i] for i in sorted(component)])
    return groups


def dependency_order(entries: Sequence[Entry]) -> list[Entry]:
    """Referenced resources before the resources that reference them (cycles kept together, input order)."""
    return [e for group in dependency_groups(entries) for e in group]


def packed_chunks(groups: Sequence[Sequence[Entry]], size: int) -> Iterator[list[Entry]]:
    """Chunks of at most `size` entries that never split a group (a larger group is a chunk of its own)."""
    chunk: list[Entry] = []
    for group in groups:
        if chunk and len(chunk) + len(group) > size:
            yield chunk
            chunk = []
        chunk.extend(group)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def chunks(entries: Sequence[Entry], size: int) -> Iterator[list[Entry]]:
    for start in range(0, len(entries), size):
        yield list(entries[start : start + size])


# --- conditional mode: the partner assigns ids ------------------------------------------------------------------


# FHIR R4 search, "Escaping Search Parameters" (http://hl7.org/fhir/R4/search.html#escaping): inside a search
# value `\`, `,`, `$` and `|` are syntax (escape, OR, composite and token separators) unless escaped with `\`.
_SEARCH_SYNTAX = re.compile(r"([\\,$|])")


def escape_search(text: str) -> str:
    """`text` as a literal inside one search value: an MRN "12,34" stays one value, not "12" OR "34"."""
    return _SEARCH_SYNTAX.sub(r"\\\1", text)


@dataclass(frozen=True, slots=True)
class Match:
    """How a resource is found again at a partner that assigned its own id."""

    param: str  # "identifier" or "_tag"
    system: str
    value: str

    def search_value(self) -> str:
        """The token `system|value`, each part FHIR-escaped; for an HTTP client that URL-encodes parameters."""
        return f"{escape_search(self.system)}|{escape_search(self.value)}"

    def query(self) -> str:
        """`param=<search value>`, URL-encoded: the query of a conditional URL (`Type?...`) and of If-None-Exist.
        An `&`, `#`, `+`, space or non-ASCII character in a value cannot cut or change the query (`:` and `/`
        are left as they are, legal in a query: systems stay readable)."""
        return f"{self.param}={quote(self.search_value(), safe=':/')}"


def _has_identifier(resource_type: str) -> bool:
    return any(e.name == "identifier" for e in elements(resource_type))


def _all_searchable(resource_type: str, param: str) -> bool:
    return True


def match_for(
    resource: Mapping[str, Any], id_system: str, can_search: Callable[[str, str], bool] = _all_searchable
) -> Match | None:
    """How to find the resource again: its first business identifier; else the adapter's id as an identifier
    under ``id_system`` (as a meta.tag for types without `identifier`, such as Provenance, or whose identifier
    the partner cannot search). None when the partner can search neither."""
    rtype = resource["resourceType"]
    if can_search(rtype, "identifier"):
        identifiers = resource.get("identifier")
        if isinstance(identifiers, dict):
            identifiers = [identifiers]
        for ident in identifiers or []:
            if ident.get("system") and ident.get("value"):
                return Match("identifier", str(ident["system"]), str(ident["value"]))
        if _has_identifier(rtype):
            return Match("identifier", id_system, str(resource["id"]))
    if can_search(rtype, "_tag"):
        return Match("_tag", id_system, str(resource["id"]))
    return None


def with_match(resource: Resource, match: Match) -> Resource:
    """The resource carrying its match key (a copy; the original is shared)."""
    if match.param == "identifier":
        idents = resource.get("identifier")
        if isinstance(idents, dict):
            idents = [idents]
        if any(i.get("system") == match.system and i.get("value") == match.value for i in idents or []):
            return resource
        if isinstance(resource.get("identifier"), dict):  # a single identifier (QuestionnaireResponse): add none
            return resource
        return {**resource, "identifier": [*(idents or []), {"system": match.system, "value": match.value}]}
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), {"system": match.system, "code": match.value}]
    return {**resource, "meta": meta}


def rewrite_references(node: Any, mapping: Mapping[str, str]) -> Any:
    """A copy of `node` with each reference found in `mapping` replaced (nodes without one are shared)."""
    if isinstance(node, dict):
        changed = False
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                target = ref_key(v)
                new = mapping.get(f"{target[0]}/{target[1]}") if target else None
                if new is not None:
                    out[k] = new
                    changed = True
                    continue
            nv = rewrite_references(v, mapping) if isinstance(v, dict | list) else v
            changed = changed or nv is not v
            out[k] = nv
        return out if changed else node
    if isinstance(node, list):
        items = [rewrite_references(v, mapping) if isinstance(v, dict | list) else v for v in node]
        return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
    return node


# --- Bundles -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One entry's request: method, url, and for conditional creates the If-None-Exist query."""

    method: str
    url: str
    body: bytes
    if_none_exist: str | None = None


def client_id_request(e: Entry) -> Request:
    return Request("PUT", e.ref, e.body)


def conditional_request(e: Entry, match: Match, refs: Mapping[str, str]) -> Request:
    """Conditional update on the match key, or (directory types) conditional create; the resource goes
    without its id and with references to already-sent resources rewritten to the partner's ids."""
    resource = with_match(e.resource, match)
    resource = {k: v for k, v in rewrite_references(resource, refs).items() if k != "id"}
    rtype = e.resource["resourceType"]
    if rtype in CREATE_ONLY_TYPES:
        return Request("POST", rtype, dumps(resource), if_none_exist=match.query())
    return Request("PUT", f"{rtype}?{match.query()}", dumps(resource))


def bundle_bytes(bundle_type: str, entries: Sequence[Entry], requests: Sequence[Request]) -> bytes:
    """A batch/transaction Bundle from pre-serialized bodies. fullUrl is urn:uuid:<adapter id> (the adapter's
    ids are UUIDs), so references rewritten to it resolve inside a transaction."""
    parts = []
    for e, req in zip(entries, requests, strict=True):
        request: dict[str, str] = {"method": req.method, "url": req.url}
        if req.if_none_exist:
            request["ifNoneExist"] = req.if_none_exist
        parts.append(
            b'{"fullUrl":"urn:uuid:'
            + e.resource["id"].encode()
            + b'","resource":'
            + req.body
            + b',"request":'
            + dumps(request)
            + b"}"
        )
    head = b'{"resourceType":"Bundle","type":"' + bundle_type.encode() + b'","entry":['
    return head + b",".join(parts) + b"]}"


@dataclass(frozen=True, slots=True)
class EntryResult:
    status: int
    remote_id: str | None = None
    version_id: str | None = None
    outcome: dict[str, Any] | None = None


def parse_location(location: str | None) -> tuple[str | None, str | None]:
    """(id, versionId) from a Location: "Type/id/_history/v", absolute or relative."""
    if not location:
        return None, None
    path, _, version = location.partition("/_history/")
    rid = path.rstrip("/").split("/")[-1] or None
    return rid, (version.split("/")[0] or None) if version else None


def status_code(status: object) -> int:
    """ "201" (Medplum) or "201 Created" (sekmet, HAPI) -> 201; unreadable -> 0."""
    try:
        return int(str(status).split()[0])
    except (ValueError, IndexError):
        return 0


def response_entries(bundle: Mapping[str, Any], count: int) -> list[EntryResult]:
    """One result per request entry, in order (a batch/transaction-response keeps the request's order)."""
    raw = bundle.get("entry") or []
    results = []
    for i in range(count):
        response = (raw[i].get("response") or {}) if i < len(raw) and isinstance(raw[i], dict) else {}
        rid, version = parse_location(response.get("location"))
        etag = response.get("etag")
        if version is None and isinstance(etag, str):
            version = etag.removeprefix("W/").strip('"') or None
        outcome = response.get("outcome")
        results.append(
            EntryResult(
                status_code(response.get("status")), rid, version, outcome if isinstance(outcome, dict) else None
            )
        )
    return results


def same_content(sent: Any, stored: Any, *, ignore_refs: bool = False) -> bool:
    """Does the partner's copy hold everything we sent? Servers add meta (versionId, lastUpdated) and may
    normalize decimals (14.50 -> 14.5): dicts are compared on our keys only, numbers by value, and the
    partner's id and meta.versionId/lastUpdated are ignored. With ``ignore_refs`` reference strings are
    skipped (the partner rewrote urn:uuid references to its own ids)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return False
        for k, v in sent.items():
            if k == "id" or (ignore_refs and k == "reference"):
                continue
            if k not in stored or not same_content(v, stored[k], ignore_refs=ignore_refs):
                return False
        return True
    if isinstance(sent, list):
        return (
            isinstance(stored, list)
            and len(sent) == len(stored)
            and all(same_content(a, b, ignore_refs=ignore_refs) for a, b in zip(sent, stored, strict=True))
        )
    if isinstance(sent, bool) or isinstance(stored, bool):
        return sent is stored
    return bool(sent == stored)
