"""A Bundle as the engine sees it: entries by reference key, and every Coding and Reference of each resource.

One walk per resource collects the Codings (with where they sit) and the References (with the element path and
the key of the entry they resolve to), so labeling, propagation and redaction never walk a resource twice.
Paths name elements without list indexes ("CarePlan.activity.reference"); extensions are named by url
("Flag.extension(http://hl7.org/fhir/StructureDefinition/flag-detail).valueReference").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from adapter.fhir import Resource

DIRECTORY_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole", "Location"})
# Elements never walked (existing labels in meta are read separately), and elements whose codes are not clinical
# data about the patient (a Consent's provisions describe data, they are not data): their references still count.
_SKIP_ROOT = {"meta", "text", "id", "resourceType"}
_SKIP_BY_TYPE = {"Consent": {"provision"}}


@dataclass(frozen=True, slots=True)
class CodingRef:
    path: str
    system: str
    code: str


@dataclass(frozen=True, slots=True)
class Ref:
    path: str
    reference: str
    target: str | None  # key of the Bundle entry it resolves to ("Condition/<id>"), None when not in the Bundle


@dataclass(frozen=True, slots=True)
class Node:
    """One Bundle entry: its fullUrl, reference key, resource and what the walk found in it."""

    full_url: str | None
    key: str
    resource: Resource
    codings: tuple[CodingRef, ...]
    references: tuple[Ref, ...]

    @property
    def resource_type(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def is_directory(self) -> bool:
        return self.resource_type in DIRECTORY_TYPES


def key_of(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def reference_key(reference: str, by_full_url: Mapping[str, str]) -> str | None:
    """The entry key a reference string names: relative ("Condition/1"), absolute (".../fhir/Condition/1"),
    versioned (".../_history/2") or a fullUrl (urn:uuid:...). None for contained (#) and unparseable ones."""
    if not reference or reference.startswith("#"):
        return None
    if reference in by_full_url:
        return by_full_url[reference]
    bare = reference.split("/_history/")[0]
    if bare in by_full_url:
        return by_full_url[bare]
    parts = bare.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return f"{parts[-2]}/{parts[-1]}"


def _walk(node: dict[str, Any], path: str, codings: list[CodingRef], refs: list[tuple[str, str]]) -> None:
    """Collect from one object and everything below it. Lists are walked in place (a list adds no path step), so
    only objects cost a call; this runs for every element of every disclosed resource."""
    system, code = node.get("system"), node.get("code")
    if type(system) is str and type(code) is str:
        codings.append(CodingRef(path, system, code))
    reference = node.get("reference")
    if type(reference) is str:
        refs.append((path, reference))
    for name, value in node.items():
        kind = type(value)
        if kind is dict:
            _walk(value, f"{path}.{name}", codings, refs)
        elif kind is list:
            if name == "extension":
                for ext in value:
                    if type(ext) is dict:
                        _walk(ext, f"{path}.extension({ext.get('url')})", codings, refs)
            else:
                _walk_list(value, f"{path}.{name}", codings, refs)


def _walk_list(items: list[Any], path: str, codings: list[CodingRef], refs: list[tuple[str, str]]) -> None:
    for item in items:
        kind = type(item)
        if kind is dict:
            _walk(item, path, codings, refs)
        elif kind is list:
            _walk_list(item, path, codings, refs)


def scan(resource: Mapping[str, Any]) -> tuple[list[CodingRef], list[tuple[str, str]]]:
    """Every Coding (anything with a system and a code, valueCoding and answers included) and every Reference."""
    rtype = str(resource.get("resourceType"))
    not_data = _SKIP_BY_TYPE.get(rtype, set())
    codings: list[CodingRef] = []
    ignored: list[CodingRef] = []
    refs: list[tuple[str, str]] = []
    for name, value in resource.items():
        kind = type(value)
        if name in _SKIP_ROOT or (kind is not dict and kind is not list):
            continue
        # References are collected everywhere (redaction needs them all); codes only in clinical data.
        found = ignored if name in not_data else codings
        if kind is dict:
            _walk(value, f"{rtype}.{name}", found, refs)
        elif name == "extension":
            for ext in value:
                if type(ext) is dict:
                    _walk(ext, f"{rtype}.extension({ext.get('url')})", found, refs)
        else:
            _walk_list(value, f"{rtype}.{name}", found, refs)
    return codings, refs


def references(node: Any) -> Iterator[str]:
    """Every literal `reference` string below `node` (no paths: for checks that only need the strings)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            ref = item.get("reference")
            if type(ref) is str:
                yield ref
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            stack.extend(v for v in item if type(v) is dict or type(v) is list)


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    by_key: Mapping[str, Node]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def get(self, key: str | None) -> Node | None:
        return self.by_key.get(key) if key else None

    def patient(self) -> Node | None:
        return next((n for n in self.nodes if n.resource_type == "Patient"), None)


def build(bundle: Mapping[str, Any]) -> Graph:
    entries = [e for e in bundle.get("entry") or () if isinstance(e.get("resource"), dict)]
    by_full_url = {str(e["fullUrl"]): key_of(e["resource"]) for e in entries if e.get("fullUrl")}
    nodes = []
    for entry in entries:
        resource = entry["resource"]
        codings, refs = scan(resource)
        nodes.append(
            Node(
                full_url=entry.get("fullUrl"),
                key=key_of(resource),
                resource=resource,
                codings=tuple(codings),
                references=tuple(Ref(p, r, reference_key(r, by_full_url)) for p, r in refs),
            )
        )
    return Graph(tuple(nodes), {n.key: n for n in nodes})


@lru_cache(maxsize=1 << 14)
def path_matches(pattern: str, path: str) -> bool:
    """'*.reasonReference' matches any type and any path ending in that element; 'Type.a.b' matches exactly."""
    if pattern.startswith("*."):
        return path.endswith(pattern[1:])
    return pattern == path or fnmatchcase(path, pattern)
