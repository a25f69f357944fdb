"""A search request, parsed and checked against the table in searchparams.py.

Deny by default: a parameter, modifier or ``_include`` the server does not implement is a 400, never silently
ignored (a partner that asked for a filter must not receive more than it asked for). The parsed query has a
canonical form (sorted parameters) that the self link and the page token carry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.consent.graph import reference_key
from adapter.errors import Problem, UsageError
from adapter.partner_api.searchparams import PATIENT_PARAMS, SEARCH, RefParam

DEFAULT_COUNT = 50
MAX_COUNT = 200
# Presentation parameters: they change the representation, not the result (handled by the response layer).
PRESENTATION = frozenset({"_format", "_pretty"})
PAGE_PARAM = "_page"
_COUNT = re.compile(r"[0-9]{1,9}")  # bounded: int() of a huge digit string is slow
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id


@dataclass(frozen=True)
class Include:
    """``_include=Source:param[:Target]``."""

    param: RefParam
    source: str
    target: str | None = None

    def __str__(self) -> str:
        return f"{self.source}:{self.param.name}" + (f":{self.target}" if self.target else "")

    def keys(self, resource: Mapping[str, Any]) -> list[str]:
        return list(self.param.keys(resource, self.target))


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str
    ids: tuple[frozenset[str], ...]  # each `_id` occurrence: OR over its comma list; AND across occurrences
    references: tuple[tuple[RefParam, frozenset[str]], ...]  # (parameter, "Type/id" keys it must point to)
    includes: tuple[Include, ...]
    count: int
    canonical: tuple[tuple[str, str], ...]  # the query's own parameters, sorted: links and page tokens

    def matches(self, resource: Mapping[str, Any]) -> bool:
        if resource.get("resourceType") != self.resource_type:
            return False
        if any(resource.get("id") not in ids for ids in self.ids):
            return False
        return all(keys & set(param.keys(resource)) for param, keys in self.references)

    def wanted_keys(self) -> frozenset[str] | None:
        """The keys the query can match at most, when `_id` bounds it (the search may stop once all are found)."""
        if not self.ids:
            return None
        return frozenset(f"{self.resource_type}/{i}" for i in frozenset.intersection(*self.ids))

    def patient_keys(self) -> frozenset[str] | None:
        """The Patient keys a patient/subject criterion allows (None: no such criterion)."""
        sets = [keys for param, keys in self.references if param.name in PATIENT_PARAMS]
        return frozenset.intersection(*sets) if sets else None


def _bad(message: str, param: str) -> UsageError:
    return UsageError(message, [Problem(message, field=param)])


def _values(name: str, raw: str) -> list[str]:
    values = [v.strip() for v in raw.split(",")]
    if not all(values):
        raise _bad(f"empty value in {name}", name)
    return values


def _reference_keys(param: RefParam, raw: str) -> frozenset[str]:
    """`patient=123`, `patient=Patient/123` or an absolute URL ending in Patient/123 -> {"Patient/123"}.

    A bare id is a Patient id for patient-selecting parameters (the only target they have here)."""
    keys = set()
    for value in _values(param.name, raw):
        key = reference_key(value, {}) if "/" in value else None
        if key is None and "/" not in value and param.name in PATIENT_PARAMS:
            key = f"Patient/{value}"
        if key is None or not _ID.fullmatch(key.partition("/")[2]):
            raise _bad(f"{param.name}: not a reference (Type/id)", param.name)
        keys.add(key)
    return frozenset(keys)


def _include(resource_type: str, raw: str) -> Include:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or parts[0] != resource_type or parts[1] not in SEARCH[resource_type]:
        supported = ", ".join(f"{resource_type}:{n}" for n in SEARCH[resource_type]) or "none"
        raise _bad(f"unsupported _include {raw!r} for {resource_type} (supported: {supported})", "_include")
    param = SEARCH[resource_type][parts[1]]
    target = parts[2] if len(parts) == 3 else None
    if target is not None and (target not in SEARCH or (param.targets and target not in param.targets)):
        raise _bad(f"unsupported _include target type in {raw!r}", "_include")
    return Include(param, resource_type, target)


def _count(raw: str) -> int:
    if not _COUNT.fullmatch(raw):
        raise _bad("_count must be a non-negative integer", "_count")
    return min(int(raw), MAX_COUNT)  # a server may return fewer than asked (FHIR search: _count)


def parse_search(resource_type: str, params: Sequence[tuple[str, str]]) -> SearchQuery:
    """Parse the query string of ``GET /fhir/{type}`` (presentation parameters and the page token excluded).

    Raises UsageError (400) for anything unsupported, and when no criterion selects the records: the API
    searches by patient, subject or _id, never over every client at once."""
    table = SEARCH[resource_type]
    ids: list[frozenset[str]] = []
    references: list[tuple[RefParam, frozenset[str]]] = []
    includes: list[Include] = []
    count = DEFAULT_COUNT
    canonical: list[tuple[str, str]] = []
    for name, raw in params:
        if name in PRESENTATION:
            continue
        canonical.append((name, raw))
        if name == "_id":
            values = _values(name, raw)
            if not all(_ID.fullmatch(v) for v in values):
                raise _bad("_id: not a FHIR id", name)
            ids.append(frozenset(values))
        elif name == "_include":
            includes.append(_include(resource_type, raw))
        elif name == "_count":
            count = _count(raw)
        elif name in table and name in PATIENT_PARAMS:
            references.append((table[name], _reference_keys(table[name], raw)))
        elif name == PAGE_PARAM:
            raise _bad(f"{PAGE_PARAM} cannot be combined with other search parameters", name)
        else:
            criteria = ", ".join(["_id", *sorted(n for n in table if n in PATIENT_PARAMS)])
            raise _bad(f"unsupported search parameter {name!r} for {resource_type} (supported: {criteria})", name)
    if not ids and not references:
        criteria = " or ".join(["_id", *sorted(n for n in table if n in PATIENT_PARAMS)])
        raise _bad(f"search {resource_type} by {criteria}", "_id")
    return SearchQuery(
        resource_type,
        tuple(ids),
        tuple(references),
        tuple(dict.fromkeys(includes)),
        count,
        tuple(sorted(canonical)),
    )
