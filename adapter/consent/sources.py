"""Where records come from: the SourceIndex answers "was this produced by (or received from) a Part 2 program?".

Part 2 status is a property of provenance, never of codes (42 CFR 2.11/2.12). Every clinical resource carries
``meta.source`` = the absolute URL of the Organization of the program that produced it; the index maps those URLs
to program facts. It is built from the program Organizations in the Bundle (type ``organization-type#dept``;
``bh-adapter#part2-program`` for a Part 2 program) plus configured external sources (partners whose data the
adapter received), so data pulled from a partner is judged by the partner's configuration, not by a lookup table
in code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapter.mappings.profiles import ADAPTER_CODES, ORGANIZATION_TYPE

PART2_PROGRAM_CODE = "part2-program"


@dataclass(frozen=True)
class ProgramFacts:
    """What the engine knows about a source: its URL, whether it is a Part 2 program, a name for reports."""

    url: str
    part2: bool
    name: str = ""


@dataclass(frozen=True)
class SourceIndex:
    """meta.source URL -> ProgramFacts; also the Part 2 programs by reference key ("Organization/<id>")."""

    by_url: Mapping[str, ProgramFacts]
    part2_keys: frozenset[str]

    def facts(self, source: str) -> ProgramFacts | None:
        """The program behind a meta.source. Servers may append a request id as a fragment (stock HAPI FHIR writes
        `<source>#<request id>`): the fragment never changes which program produced the data."""
        found = self.by_url.get(source) or self.by_url.get(source.rstrip("/"))
        if found is None and "#" in source:
            return self.facts(source.partition("#")[0])
        return found

    def is_part2_reference(self, key: str) -> bool:
        """Is the resource behind this reference key ("Organization/<id>") a Part 2 program?"""
        return key in self.part2_keys

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any], external: Iterable[ProgramFacts] = ()) -> SourceIndex:
        """Index the Bundle's program Organizations (keyed by fullUrl) and the configured external sources.

        A configured source wins over a Bundle entry with the same URL only by being more protective: a URL is
        Part 2 when either says so.
        """
        by_url: dict[str, ProgramFacts] = {}
        part2_keys: set[str] = set()
        for entry in bundle.get("entry") or ():
            resource = entry.get("resource") or {}
            if resource.get("resourceType") != "Organization" or not _is_program(resource):
                continue
            url = str(entry.get("fullUrl") or f"Organization/{resource.get('id')}")
            part2 = _is_part2(resource)
            by_url[url] = ProgramFacts(url, part2, str(resource.get("name") or ""))
            if part2:
                part2_keys.add(f"Organization/{resource.get('id')}")
        for facts in external:
            known = by_url.get(facts.url)
            by_url[facts.url] = ProgramFacts(facts.url, facts.part2 or bool(known and known.part2), facts.name)
            if by_url[facts.url].part2:
                part2_keys.add("Organization/" + facts.url.rstrip("/").rsplit("/", 1)[-1])
        return cls(by_url, frozenset(part2_keys))


def _codings(resource: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for concept in resource.get("type") or ():
        for coding in concept.get("coding") or ():
            yield str(coding.get("system")), str(coding.get("code"))


def _is_program(resource: Mapping[str, Any]) -> bool:
    codes = set(_codings(resource))
    return (ORGANIZATION_TYPE, "dept") in codes or (ADAPTER_CODES, PART2_PROGRAM_CODE) in codes


def _is_part2(resource: Mapping[str, Any]) -> bool:
    return (ADAPTER_CODES, PART2_PROGRAM_CODE) in set(_codings(resource))
