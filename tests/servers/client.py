"""Small FHIR client helpers for tests that talk to a peer (tests/servers/peers.py).

Bodies go out through adapter.fhir.dumps (decimals verbatim) and come back through adapter.fhir.loads
(fractional numbers as Decimal). Both peers parse JSON numbers as binary floats, so a decimal read back may
lose trailing zeros (14.50 -> 14.5): compare decimals by value, not by text.
"""

from __future__ import annotations

import atexit
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import httpx

from adapter.fhir import dumps, loads

FHIR_JSON = "application/fhir+json"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
TIMEOUT_S = 30.0
# Statuses with which servers answer $validate for an invalid resource (200: sekmet, HAPI; 400: Medplum;
# 412 and 422: other servers in the wild).
VALIDATE_STATUSES = frozenset({200, 400, 412, 422})

# Without it sekmet ignores an unknown search parameter (and so returns everything); Medplum's peer always
# rejects one. Sent on every search so a typo, or a parameter a peer lacks, fails loudly on both.
STRICT_SEARCH = {"Prefer": "handling=strict"}

Resource = dict[str, Any]


# One long-lived client: building one per request (httpx.request) costs ~20 ms of SSL setup each time.
_CLIENT = httpx.Client(timeout=TIMEOUT_S)
atexit.register(_CLIENT.close)


class HasBaseUrl(Protocol):
    @property
    def base_url(self) -> str: ...


class PeerResponseError(RuntimeError):
    """The peer answered with an unexpected status; `outcome` is its OperationOutcome when it sent one."""

    def __init__(self, method: str, url: str, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.outcome: Resource | None = _json_or_none(response)
        super().__init__(f"{method} {url} -> HTTP {response.status_code}: {response.text[:500]}")


def _json_or_none(response: httpx.Response) -> Resource | None:
    try:
        body = loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def request(
    peer: HasBaseUrl,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    expect: frozenset[int] | set[int] = frozenset({200, 201}),
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One FHIR request relative to the peer's base; raises PeerResponseError unless the status is expected."""
    url = path if path.startswith("http") else f"{peer.base_url}/{path.lstrip('/')}"
    response = _CLIENT.request(
        method,
        url,
        content=dumps(body) if body is not None else None,
        headers={**HEADERS, **(headers or {})},
        params=params,
    )
    if response.status_code not in expect:
        raise PeerResponseError(method, url, response)
    return response


def resource_of(response: httpx.Response) -> Resource:
    body = loads(response.content)
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    return body


def validate(peer: HasBaseUrl, resource: Mapping[str, Any]) -> Resource:
    """POST [base]/[type]/$validate; the OperationOutcome whatever status the peer uses to say "invalid"."""
    response = request(peer, "POST", f"{resource['resourceType']}/$validate", resource, expect=VALIDATE_STATUSES)
    outcome = resource_of(response)
    if outcome.get("resourceType") != "OperationOutcome":
        raise ValueError(f"$validate returned a {outcome.get('resourceType')}, not an OperationOutcome")
    return outcome


def errors(outcome: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The error and fatal issues of an OperationOutcome."""
    return [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def transaction_bundle(resources: Sequence[Mapping[str, Any]], bundle_type: str = "transaction") -> Resource:
    """A transaction (or batch) Bundle: PUT Type/id for resources with an id (idempotent re-send), else POST.

    A resource without an id gets a fresh urn:uuid fullUrl; put `"fullUrl": "urn:uuid:..."` in the mapping
    passed here (it is removed from the resource) to reference it from other entries. A resource with a
    UUID id gets fullUrl urn:uuid:<id>; references to it are plain "Type/id" and need no rewriting.
    """
    entries = []
    for original in resources:
        resource = dict(original)
        full_url = resource.pop("fullUrl", None)
        rtype = resource["resourceType"]
        if resource.get("id"):
            request_part = {"method": "PUT", "url": f"{rtype}/{resource['id']}"}
            full_url = full_url or _uuid_urn(str(resource["id"]))
        else:
            request_part = {"method": "POST", "url": rtype}
            full_url = full_url or f"urn:uuid:{uuid.uuid4()}"
        entry = {"fullUrl": full_url} if full_url else {}
        entries.append({**entry, "resource": resource, "request": request_part})
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def _uuid_urn(resource_id: str) -> str | None:
    """fullUrl must be absolute: urn:uuid:<id> when the id is a UUID (the adapter's ids are), else none."""
    try:
        return f"urn:uuid:{uuid.UUID(resource_id)}"
    except ValueError:
        return None


def post_transaction(peer: HasBaseUrl, resources: Sequence[Mapping[str, Any]]) -> Resource:
    """POST a transaction of `resources` (see transaction_bundle); the transaction-response Bundle.

    Raises PeerResponseError (with the peer's OperationOutcome) when the transaction is rejected.
    """
    return resource_of(request(peer, "POST", "", transaction_bundle(resources), expect={200}))


def post_bundle(
    peer: HasBaseUrl, bundle: Mapping[str, Any], expect: frozenset[int] | set[int] = frozenset({200})
) -> httpx.Response:
    """POST a ready-made batch/transaction Bundle to the base."""
    return request(peer, "POST", "", bundle, expect=expect)


def read_back(peer: HasBaseUrl, resource_type: str, resource_id: str) -> Resource:
    """GET [base]/[type]/[id]; raises PeerResponseError unless 200."""
    return resource_of(request(peer, "GET", f"{resource_type}/{resource_id}", expect={200}))


def search_pages(peer: HasBaseUrl, resource_type: str, params: Mapping[str, str] | None = None) -> Iterator[Resource]:
    """Every searchset page, following `next` links (strict handling: unknown parameters are errors)."""
    url: str | None = f"{peer.base_url}/{resource_type}"
    query: Mapping[str, str] | None = params
    while url:
        page = resource_of(request(peer, "GET", url, params=query, headers=STRICT_SEARCH, expect={200}))
        yield page
        url = next((link["url"] for link in page.get("link", []) if link.get("relation") == "next"), None)
        query = None  # next links carry the whole query


def search_all(peer: HasBaseUrl, resource_type: str, params: Mapping[str, str] | None = None) -> list[Resource]:
    """All matching resources (search.mode "match"; _include'd ones left out), across pages."""
    return [
        entry["resource"]
        for page in search_pages(peer, resource_type, params)
        for entry in page.get("entry", [])
        if entry.get("search", {}).get("mode", "match") == "match"
    ]


def read_location(peer: HasBaseUrl, location: str) -> Resource:
    """GET what a transaction-response entry's `location` names: relative to the base ("Type/id", Medplum) or
    absolute with a version ("[base]/Type/id/_history/1", sekmet, a vread); raises PeerResponseError unless 200."""
    return resource_of(request(peer, "GET", location, expect={200}))


def entry_status(entry: Mapping[str, Any]) -> int:
    """The HTTP status of a batch/transaction-response entry ("201" on Medplum, "201 Created" on sekmet)."""
    return int(str(entry["response"]["status"]).split()[0])
