"""An in-memory FHIR server behind httpx.MockTransport, for fast unit tests of the sync (no sockets).

Enough of FHIR for the push: metadata, read, PUT (update-as-create), conditional PUT / If-None-Exist on
`identifier` or `_tag`, search by identifier/_tag/_lastUpdated, and batch/transaction Bundles. Queries are
URL-decoded and token values read as the spec says (`,` is OR, `|` splits system and code, a backslash escapes
either), so a client that sends them unescaped sees what a real server would do with them. Every write
makes a version, as real servers do, so tests can count versions. ``faults`` is a list of callables consulted
per request: one returning a Response (or raising an httpx error) replaces the normal answer; with
``after=True`` the request is applied first (a response lost on the way back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from adapter.fhir import dumps, loads

BASE = "http://fake.test/fhir"


@dataclass
class Fault:
    match: Callable[[httpx.Request], bool]
    answer: Callable[[httpx.Request], httpx.Response]  # may raise an httpx.TransportError
    times: int = 1
    after: bool = False  # apply the request, then answer with the fault


@dataclass
class FakeFhir:
    store: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    update_create: bool = True
    transaction: bool = True
    counter: int = 0
    clock: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # --- plumbing ----------------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for fault in self.faults:
            if fault.times > 0 and fault.match(request):
                fault.times -= 1
                if fault.after:
                    self.route(request)
                return fault.answer(request)
        return self.route(request)

    def writes(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method in ("POST", "PUT")]

    def route(self, request: httpx.Request) -> httpx.Response:
        path = urlsplit(str(request.url)).path.removeprefix("/fhir").strip("/")
        query = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        parts = path.split("/") if path else []
        if request.method == "GET" and parts == ["metadata"]:
            return _json(200, self.capability())
        if request.method == "POST" and not parts:
            return self.bundle(loads(request.content))
        if request.method == "GET" and len(parts) == 2:
            found = self.store.get((parts[0], parts[1]))
            return _json(200, found) if found else _json(404, _oo("not-found", "no such resource"))
        if request.method == "GET" and len(parts) == 1:
            return _json(200, self.search(parts[0], query))
        if request.method == "PUT" and len(parts) == 2:
            status, body = self.put(parts[0], parts[1], loads(request.content))
            return _json(status, body)
        if request.method == "PUT" and len(parts) == 1:
            status, body = self.conditional_put(parts[0], query, loads(request.content))
            return _json(status, body)
        if request.method == "POST" and len(parts) == 1:
            cond = request.headers.get("If-None-Exist")
            status, body = self.create(parts[0], loads(request.content), cond)
            return _json(status, body)
        return _json(400, _oo("not-supported", f"{request.method} {path}"))

    def capability(self) -> dict[str, Any]:
        interactions = [{"code": "transaction"}, {"code": "batch"}] if self.transaction else [{"code": "batch"}]
        types = ["Patient", "Observation", "Condition", "Provenance", "Organization", "Practitioner", "Task"]
        return {
            "resourceType": "CapabilityStatement",
            "fhirVersion": "4.0.1",
            "software": {"name": "fakefhir"},
            "rest": [
                {
                    "mode": "server",
                    "interaction": interactions,
                    "resource": [
                        {
                            "type": t,
                            "updateCreate": self.update_create,
                            "searchParam": [{"name": "identifier"}, {"name": "_tag"}, {"name": "_lastUpdated"}],
                        }
                        for t in types
                    ],
                }
            ],
        }

    # --- storage -----------------------------------------------------------------------------------------
    def _save(self, rtype: str, rid: str, resource: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = (rtype, rid)
        created = key not in self.store
        version = self.versions.get(key, 0) + 1
        self.versions[key] = version
        self.clock += 1
        meta = {
            **(resource.get("meta") or {}),
            "versionId": str(version),
            "lastUpdated": f"2026-01-01T00:00:{self.clock % 60:02d}.{self.clock:03d}Z",
        }
        stored = {**resource, "id": rid, "meta": meta}
        self.store[key] = stored
        return (201 if created else 200), stored

    def put(self, rtype: str, rid: str, resource: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if (rtype, rid) not in self.store and not self.update_create:
            return 405, _oo("not-supported", "client-assigned ids are not allowed")
        if resource.get("resourceType") != rtype:
            return 400, _oo("invalid", "resourceType does not match the URL")
        if resource.get("status") == "bogus":
            return 400, _oo("code-invalid", "Value bogus is not in the required value set", "Observation.status")
        return self._save(rtype, rid, resource)

    def matching(self, rtype: str, query: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for (t, _), r in self.store.items():
            if t != rtype:
                continue
            if "identifier" in query:
                idents = r.get("identifier") or []
                idents = [idents] if isinstance(idents, dict) else idents
                pairs = [(i.get("system"), i.get("value")) for i in idents]
                if not token_matches(query["identifier"], pairs):
                    continue
            if "_tag" in query:
                tags = (r.get("meta") or {}).get("tag") or []
                pairs = [(t.get("system"), t.get("code")) for t in tags]
                if not token_matches(query["_tag"], pairs):
                    continue
            if "_lastUpdated" in query:
                since = query["_lastUpdated"].removeprefix("ge")
                if r["meta"]["lastUpdated"] < since:
                    continue
            out.append(r)
        return out

    def conditional_put(self, rtype: str, query: dict[str, str], resource: dict[str, Any]) -> tuple[int, Any]:
        found = self.matching(rtype, query)
        if len(found) > 1:
            return 412, _oo("duplicate", "more than one match")
        if found:
            return self._save(rtype, found[0]["id"], resource)
        self.counter += 1
        return self._save(rtype, f"srv-{self.counter}", resource)

    def create(self, rtype: str, resource: dict[str, Any], if_none_exist: str | None) -> tuple[int, Any]:
        if if_none_exist:
            query = {k: v[0] for k, v in parse_qs(if_none_exist).items()}
            found = self.matching(rtype, query)
            if found:
                return 200, found[0]
        self.counter += 1
        return self._save(rtype, f"srv-{self.counter}", resource)

    def search(self, rtype: str, query: dict[str, str]) -> dict[str, Any]:
        found = self.matching(rtype, query)
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in found],
        }

    def bundle(self, bundle: dict[str, Any]) -> httpx.Response:
        kind = bundle.get("type")
        entries = bundle.get("entry", [])
        snapshot = (dict(self.store), dict(self.versions), self.counter)
        out = []
        fullurls: dict[str, str] = {}
        for e in entries:
            req = e["request"]
            resource = e.get("resource")
            url = req["url"]
            rtype, _, rest = url.partition("?") if "?" in url else (url, "", "")
            if req["method"] == "PUT" and "?" in url:
                query = {k: v[0] for k, v in parse_qs(rest).items()}
                status, body = self.conditional_put(rtype, query, resource)
            elif req["method"] == "PUT":
                t, rid = url.split("/")
                status, body = self.put(t, rid, resource)
            elif req["method"] == "POST":
                status, body = self.create(url, resource, req.get("ifNoneExist"))
            else:
                status, body = 400, _oo("not-supported", req["method"])
            if status >= 400 and kind == "transaction":
                self.store, self.versions, self.counter = snapshot
                return _json(status, body)
            if status < 400:
                fullurls[e.get("fullUrl", "")] = f"{body['resourceType']}/{body['id']}"
                response = {
                    "status": f"{status} {'Created' if status == 201 else 'OK'}",
                    "location": f"{body['resourceType']}/{body['id']}/_history/{body['meta']['versionId']}",
                }
            else:
                response = {"status": str(status), "outcome": body}
            out.append({"response": response})
        if kind == "transaction":  # references to entries' fullUrls now point at the ids they got
            for target in set(fullurls.values()):
                key = tuple(target.split("/"))
                self.store[key] = _rewrite(self.store[key], fullurls)  # type: ignore[index]
        return _json(200, {"resourceType": "Bundle", "type": f"{kind}-response", "entry": out})

    def version_count(self) -> int:
        return sum(self.versions.values())


def split_search(value: str, sep: str) -> list[str]:
    """`value` split on `sep` where it is not escaped by a backslash; the parts keep their escapes (FHIR R4 search,
    "Escaping Search Parameters": http://hl7.org/fhir/R4/search.html#escaping)."""
    parts: list[str] = []
    current, escaped = "", False
    for ch in value:
        if escaped:
            current += "\\" + ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current + ("\\" if escaped else ""))
    return parts


def unescape_search(part: str) -> str:
    """`\\x` -> `x` (the escapes of `\\`, `,`, `$`, `|`)."""
    out, escaped = "", False
    for ch in part:
        if escaped or ch != "\\":
            out += ch
            escaped = False
        else:
            escaped = True
    return out


def tokens(value: str) -> list[tuple[str | None, str]]:
    """A token search value as (system, code) alternatives: `,` is OR, the first unescaped `|` separates system
    and code, escapes are resolved last, as a spec-correct server does. `code` alone means any system."""
    out: list[tuple[str | None, str]] = []
    for alternative in split_search(value, ","):
        pieces = split_search(alternative, "|")
        if len(pieces) == 1:
            out.append((None, unescape_search(pieces[0])))
        else:
            out.append((unescape_search(pieces[0]), unescape_search("|".join(pieces[1:]))))
    return out


def token_matches(value: str, pairs: list[tuple[Any, Any]]) -> bool:
    """Does any (system, code) of an element match the token search `value`? `code` matches in any system,
    `|code` only without a system, `system|` any code of the system."""
    for system, code in tokens(value):
        for have_system, have_code in pairs:
            if system is None:
                ok = have_code == code
            elif system == "":
                ok = not have_system and have_code == code
            else:
                ok = have_system == system and (code == "" or have_code == code)
            if ok:
                return True
    return False


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (mapping.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, mapping))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v, mapping) for v in node]
    return node


def _oo(code: str, text: str, expression: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code, "details": {"text": text}}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=dumps(body), headers={"Content-Type": "application/fhir+json"})
