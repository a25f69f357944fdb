"""Scenario fixtures (fixtures/consents/*.json) -> enforce() inputs, and selectors for their expectations.

A scenario names a fixture client, patches its mapped Bundle (drop/alter/add consents and resources, change the
birth date), and states a request. Placeholders in added resources keep the files readable:

    {patient}                    "Patient/<id>" of the client
    {program:prog-omh}           absolute URL of a program Organization (a meta.source value)
    {program-ref:prog-sud}       "Organization/<id>" of a program
    {org:org-cvrh}               "Organization/<id>" of a directory organization
    {ref:Condition|dx-16-cud}    "Type/<id>" of the Bundle entry with that business identifier value

Selectors in expectations: "Type|identifier value", "Type" (every entry of that type), or "Type/<id>".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from adapter.consent import AuditRecord, DisclosureRequest, Emergency, HipaaRestriction, Identifier
from adapter.fhir import Resource
from adapter.mappings import directory as directory_mapping
from adapter.mappings.context import MappingContext
from adapter.pipeline import LoadedClinic, MappedChart, context, load, map_chart
from adapter.settings import Settings
from adapter.terminology.systems import NPI
from tests.conftest import FIXTURES

SCENARIOS = FIXTURES / "consents"


@dataclass(frozen=True)
class Clinic:
    loaded: LoadedClinic
    ctx: MappingContext
    mapped: dict[str, MappedChart]


@cache
def clinic() -> Clinic:
    """The shipped clinic fixtures, loaded and mapped once per process (hypothesis tests take no fixtures)."""
    loaded = load([FIXTURES / "clinic"])
    ctx = context(loaded.clinic, Settings())
    return Clinic(loaded, ctx, {chart.client.id: map_chart(chart, ctx) for chart in loaded.clinic.charts})


_PLACEHOLDER = re.compile(r"\{(patient|program|program-ref|org|ref)(?::([^}]+))?\}")


@dataclass(frozen=True)
class Scenario:
    name: str
    raw: dict[str, Any]
    bundle: Resource
    consents: list[Resource]
    request: DisclosureRequest

    @property
    def expect(self) -> dict[str, Any]:
        return dict(self.raw.get("expect") or {})


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.json"))


def identifier_value(resource: Mapping[str, Any]) -> str | None:
    identifiers = resource.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else identifiers
    return str(first.get("value")) if isinstance(first, Mapping) and first.get("value") else None


THO = "http://terminology.hl7.org/CodeSystem"


def consent(patient: str, provision: dict[str, Any], *, part2: bool = False, **extra: Any) -> dict[str, Any]:
    """An active patient-privacy Consent the client signed on 2026-01-01: a Part 2 consent, or a HIPAA
    authorization; `extra` replaces or adds top-level elements (id, status, dateTime, performer ...)."""
    policy = (
        {"system": f"{THO}/v3-ActCode", "code": "42CFRPart2"}
        if part2
        else {"system": f"{THO}/consentpolicycodes", "code": "hipaa-auth"}
    )
    return {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "scope": {"coding": [{"system": f"{THO}/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "dateTime": "2026-01-01T00:00:00-05:00",
        "performer": [{"reference": patient}],
        "policyRule": {"coding": [policy]},
        "provision": provision,
    } | extra


def patient_key(chart: MappedChart) -> str:
    """ "Patient/<id>" of a client's chart."""
    return next(key(r) for r in chart.resources if r["resourceType"] == "Patient")


def with_identifier(chart: MappedChart, value: str) -> dict[str, Any]:
    """The chart's resource made from the clinic record `value` (its business identifier)."""
    return next(r for r in chart.resources if identifier_value(r) == value)


class NullAudit:
    """An AuditLog that keeps nothing (for tests that read the Disclosure, not the trail)."""

    def record(self, records: Sequence[AuditRecord]) -> None:
        pass


def key(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def select(selector: str, resources: list[Mapping[str, Any]]) -> list[str]:
    """Keys of the resources a selector names."""
    if "|" in selector:
        rtype, _, value = selector.partition("|")
        return [key(r) for r in resources if r["resourceType"] == rtype and identifier_value(r) == value]
    if "/" in selector:
        return [key(r) for r in resources if key(r) == selector]
    return [key(r) for r in resources if r["resourceType"] == selector]


def recipient_identifiers(loaded: LoadedClinic, record_id: str) -> tuple[Identifier, ...]:
    if "|" in record_id:
        return (Identifier.parse(record_id),)
    d = loaded.clinic.directory
    found: Any = d.organizations.get(record_id) or d.programs.get(record_id) or d.practitioners.get(record_id)
    assert found is not None, f"no directory entry {record_id}"
    out = [Identifier(system=NPI, value=found.npi)] if found.npi else []
    return tuple(out + [Identifier(system=i.system, value=i.value) for i in found.identifiers])


def _fill(node: Any, resolve: Any) -> Any:
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda m: resolve(m.group(1), m.group(2)), node)
    if isinstance(node, list):
        return [_fill(x, resolve) for x in node]
    if isinstance(node, dict):
        return {k: _fill(v, resolve) for k, v in node.items()}
    return node


def build(path: Path, loaded: LoadedClinic, ctx: MappingContext, mapped: Mapping[str, MappedChart]) -> Scenario:
    raw = json.loads(path.read_text(encoding="utf-8"))
    chart = mapped[raw["client"]]
    original = chart.bundle
    resources = [e["resource"] for e in original["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")

    def resolve(kind: str, arg: str | None) -> str:
        if kind == "patient":
            return key(patient)
        assert arg is not None
        if kind == "program":
            return ctx.program_url(arg)
        if kind == "program-ref":
            return f"Organization/{ctx.id('Organization', 'program', arg)}"
        if kind == "org":
            return f"Organization/{ctx.id('Organization', arg)}"
        found = select(arg, resources)
        assert len(found) == 1, f"{path.name}: {arg} names {len(found)} resources"
        return found[0]

    orgs: set[str] = set()

    def resolve_and_note(kind: str, arg: str | None) -> str:
        if kind == "org" and arg:
            orgs.add(arg)
        return resolve(kind, arg)

    patch = _fill(raw.get("patch") or {}, resolve_and_note)
    by_identifier = {identifier_value(r): r for r in resources if r["resourceType"] == "Consent"}
    drop = {key(by_identifier[v]) for v in patch.get("drop_consents", [])}
    changes: dict[str, dict[str, Any]] = {}
    for value, status in (patch.get("consent_status") or {}).items():
        changes.setdefault(key(by_identifier[value]), {})["status"] = status
    for value, change in (patch.get("consent_changes") or {}).items():
        changes.setdefault(key(by_identifier[value]), {}).update(change)
    entries = []
    for entry in original["entry"]:
        resource = entry["resource"]
        k = key(resource)
        if k in drop:
            continue
        if k in changes:
            resource = {**resource, **changes[k]}  # shallow: the mapped resource itself is never modified
        if resource["resourceType"] == "Patient" and patch.get("patient"):
            resource = {**resource, **patch["patient"]}
        entries.append({**entry, "resource": resource})
    present = {key(e["resource"]) for e in entries}
    # A consent naming an organization brings it into the Bundle, as the mapping does for recorded consents.
    directory = [directory_mapping.organization(loaded.clinic.directory.organizations[o], ctx) for o in sorted(orgs)]
    added_resources = [*patch.get("add_resources", []), *patch.get("add_consents", [])]
    for added in [*added_resources, *(d for d in directory if key(d) not in present)]:
        entries.append({"fullUrl": f"{ctx.fhir_base}/{key(added)}", "resource": added})
    bundle = {**original, "entry": entries}
    consents = [e["resource"] for e in entries if e["resource"]["resourceType"] == "Consent"]
    return Scenario(path.stem, raw, bundle, consents, request(raw["request"], loaded))


def request(raw: dict[str, Any], loaded: LoadedClinic) -> DisclosureRequest:
    organizations = recipient_identifiers(loaded, raw["to"]) if raw.get("to") else ()
    practitioners = recipient_identifiers(loaded, raw["practitioner"]) if raw.get("practitioner") else ()
    emergency = raw.get("emergency")
    return DisclosureRequest(
        recipient_organizations=organizations,
        recipient_practitioners=practitioners,
        recipient_name=str(raw.get("to") or raw.get("practitioner")),
        purpose=raw["purpose"],
        instant=datetime.fromisoformat(raw["instant"]),
        disclosed_by="scenario test",
        emergency=Emergency(**emergency) if emergency else None,
        recipient_is_medical_personnel=bool(raw.get("recipient_is_medical_personnel")),
        treating_relationship=bool(raw.get("treating_relationship")),
        minor_may_consent_alone=bool(raw.get("minor_may_consent_alone")),
        hipaa_restrictions=tuple(
            HipaaRestriction(
                recipients=tuple(i for r in h.get("recipients", []) for i in recipient_identifiers(loaded, r)),
                purposes=tuple(h.get("purposes", [])),
            )
            for h in raw.get("hipaa_restrictions", [])
        ),
    )


def walk_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from walk_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_references(item)
