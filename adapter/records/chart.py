"""Assemble loaded records into per-client charts, checking every link between records.

A record whose links do not resolve (unknown client, practitioner, diagnosis, visit ...) is rejected with a
problem naming the field; so is a record that depends on a rejected one. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from adapter.bulk import collector_paused
from adapter.errors import Problem
from adapter.records import (
    Assessment,
    Client,
    Consent,
    Diagnosis,
    MedicationOrder,
    Organization,
    Practitioner,
    Program,
    ProgressNote,
    Referral,
    ReportedMedication,
    SafetyPlan,
    TreatmentPlan,
    Visit,
)
from adapter.records.loader import SourcedRecord


@dataclass(frozen=True, slots=True)
class Directory:
    practitioners: dict[str, Practitioner]
    organizations: dict[str, Organization]
    programs: dict[str, Program]


@dataclass(slots=True)
class Chart:
    """Everything the clinic holds about one client, links resolved."""

    client: Client
    source: str
    assessments: list[Assessment] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    treatment_plans: list[TreatmentPlan] = field(default_factory=list)
    safety_plans: list[SafetyPlan] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    notes: list[ProgressNote] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)
    medication_orders: list[MedicationOrder] = field(default_factory=list)
    reported_medications: list[ReportedMedication] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    # (kind, id) of the practitioners, organizations and programs the chart's records link to
    directory_links: set[tuple[str, str]] = field(default_factory=set)

    def record_count(self) -> int:
        return 1 + sum(len(getattr(self, name)) for name in _CHART_LISTS.values())

    def records(self) -> Iterator[Any]:
        """The client record, then every clinical record of the chart."""
        yield self.client
        for name in _CHART_LISTS.values():
            yield from getattr(self, name)


_CHART_LISTS: dict[type, str] = {
    Assessment: "assessments",
    Diagnosis: "diagnoses",
    TreatmentPlan: "treatment_plans",
    SafetyPlan: "safety_plans",
    Referral: "referrals",
    ProgressNote: "notes",
    Consent: "consents",
    MedicationOrder: "medication_orders",
    ReportedMedication: "reported_medications",
    Visit: "visits",
}


@dataclass(slots=True)
class Clinic:
    directory: Directory
    charts: list[Chart]
    problems: list[Problem]


def field_of(record: Any, name: str) -> Any:
    """A record field's value, or None for a record kind without that field. Not getattr(): on a pydantic model a
    missing attribute goes through __getattr__ and an exception, which costs more than the whole lookup here."""
    return record.__dict__.get(name)


def links(record: Any) -> Iterator[tuple[str, str, str]]:
    """(field, target kind, target id) for every link a record makes; kinds: practitioner, organization,
    program, client, diagnosis, visit, assessment, related (a client's related party)."""
    match record:
        case Program():
            yield "organization", "organization", record.organization
        case Organization() if record.part_of:
            yield "part_of", "organization", record.part_of
        case Client() if record.program:
            yield "program", "program", record.program
    client = field_of(record, "client")
    if isinstance(client, str):
        yield "client", "client", client
        yield "program", "program", record.program
        visit = field_of(record, "visit")
        if visit:
            yield "visit", "visit", visit
    match record:
        case Assessment() if record.administered_by:
            yield "administered_by", "practitioner", record.administered_by
        case Diagnosis() if record.recorded_by:
            yield "recorded_by", "practitioner", record.recorded_by
        case TreatmentPlan():
            yield "author", "practitioner", record.author
            for i, dx in enumerate(record.problems):
                yield f"problems[{i}]", "diagnosis", dx
            for i, iv in enumerate(record.interventions):
                if iv.provider:
                    yield f"interventions[{i}].provider", "practitioner", iv.provider
            for i, sig in enumerate(record.signatures):
                kind = {"client": "client", "guardian": "related"}.get(sig.role, "practitioner")
                yield f"signatures[{i}].signer", kind, sig.signer
        case SafetyPlan():
            yield "author", "practitioner", record.author
        case Referral():
            yield "requested_by", "practitioner", record.requested_by
            if record.to_organization:
                yield "to_organization", "organization", record.to_organization
            if record.to_practitioner:
                yield "to_practitioner", "practitioner", record.to_practitioner
            for i, dx in enumerate(record.reasons):
                yield f"reasons[{i}]", "diagnosis", dx
            for i, asm in enumerate(record.supporting_assessments):
                yield f"supporting_assessments[{i}]", "assessment", asm
        case ProgressNote():
            yield "author", "practitioner", record.author
        case Consent():
            for i, rcp in enumerate(record.recipients):
                if rcp.organization:
                    yield f"recipients[{i}].organization", "organization", rcp.organization
                if rcp.practitioner:
                    yield f"recipients[{i}].practitioner", "practitioner", rcp.practitioner
            if record.grantor.related:
                yield "grantor.related", "related", record.grantor.related
            if record.witness:
                yield "witness", "practitioner", record.witness
        case MedicationOrder():
            yield "prescriber", "practitioner", record.prescriber
            for i, dx in enumerate(record.reasons):
                yield f"reasons[{i}]", "diagnosis", dx
        case Visit():
            for i, part in enumerate(record.participants):
                yield f"participants[{i}].practitioner", "practitioner", part.practitioner
            for i, dx in enumerate(record.diagnoses):
                yield f"diagnoses[{i}]", "diagnosis", dx


_DIRECTORY = frozenset({"practitioner", "organization", "program"})
# Kinds whose ids are scoped to one client: a link to them must stay inside the same chart.
_CLIENT_SCOPED = {"diagnosis", "visit", "assessment"}


def assemble(records: Iterable[SourcedRecord]) -> Clinic:
    """Group records into charts; reject duplicates, dangling links and dependents of rejected records."""
    with collector_paused():  # adapter/bulk.py: builds no cycles, keeps everything alive
        return _assemble(records)


def _assemble(records: Iterable[SourcedRecord]) -> Clinic:
    problems: list[Problem] = []
    accepted: dict[tuple[str, str], SourcedRecord] = {}
    for item in records:
        key: tuple[str, str] = (item.record.kind, item.record.id)
        if key in accepted:
            problems.append(
                Problem(
                    f"duplicate {item.record.kind} id (first seen in {accepted[key].source})",
                    location=item.source,
                    record_id=item.record.id,
                    field="id",
                )
            )
            continue
        accepted[key] = item

    # Fixed point: drop records whose links do not resolve among the still-accepted records.
    changed = True
    record_links = {key: tuple(links(item.record)) for key, item in accepted.items()}
    earliest = {key: _earliest_date(item.record) for key, item in accepted.items() if _is_clinical(item.record)}
    while changed:
        changed = False
        for key, item in list(accepted.items()):
            problem = _first_broken_link(item, record_links[key], accepted) or _before_birth(
                item, earliest.get(key), accepted
            )
            if problem:
                problems.append(problem)
                del accepted[key]
                changed = True

    directory = Directory(
        practitioners={i: r.record for (k, i), r in accepted.items() if k == "practitioner"},  # type: ignore[misc]
        organizations={i: r.record for (k, i), r in accepted.items() if k == "organization"},  # type: ignore[misc]
        programs={i: r.record for (k, i), r in accepted.items() if k == "program"},  # type: ignore[misc]
    )
    charts: dict[str, Chart] = {}
    ordered = sorted(accepted.items())
    for (_kind, rid), item in ordered:
        if isinstance(item.record, Client):
            charts[rid] = Chart(client=item.record, source=item.source)
    for key, item in ordered:
        client_id = key[1] if isinstance(item.record, Client) else field_of(item.record, "client")
        if not isinstance(client_id, str):
            continue  # directory records belong to no chart
        chart = charts[client_id]
        if not isinstance(item.record, Client):
            getattr(chart, _CHART_LISTS[type(item.record)]).append(item.record)
        chart.directory_links.update((kind, target) for _f, kind, target in record_links[key] if kind in _DIRECTORY)
    for client_id, chart in list(charts.items()):
        if chart.client.program is None and not any(field_of(r, "program") for r in chart.records()):
            # The organization that holds a client's records (the Bundle's author and custodian) is known from a
            # program only: a client with no records needs its registering program.
            source = accepted[("client", client_id)].source
            message = "a client with no records needs the program that registered it (the records' custodian)"
            problems.append(Problem(message, location=source, record_id=client_id, field="program"))
            del charts[client_id]
    return Clinic(directory=directory, charts=list(charts.values()), problems=problems)


def _first_broken_link(
    item: SourcedRecord, record_links: tuple[tuple[str, str, str], ...], accepted: dict[tuple[str, str], SourcedRecord]
) -> Problem | None:
    record = item.record
    own_client = field_of(record, "client")
    for field_name, kind, target in record_links:
        if kind == "related":
            client = accepted.get(("client", own_client or ""))
            parties = {r.id: r for r in client.record.related} if client and isinstance(client.record, Client) else {}
            party = parties.get(target)
            if party is None:
                return _problem(item, field_name, f"unknown related party {target!r} of the client")
            if not party.legal_representative:
                # Only a legal representative may consent or sign for the client.
                return _problem(item, field_name, f"related party {target!r} is not a legal representative")
            continue
        if kind == "client" and field_name != "client" and target != own_client:
            return _problem(item, field_name, "a client signature must be the plan's own client")
        linked = accepted.get((kind, target))
        if linked is None:
            return _problem(item, field_name, f"unknown or rejected {kind} {target!r}")
        if kind in _CLIENT_SCOPED and field_of(linked.record, "client") != own_client:
            return _problem(item, field_name, f"{kind} {target!r} belongs to another client")
        if kind == "visit" and getattr(linked.record, "program", None) != getattr(record, "program", None):
            # Part 2 status follows the producing program; a record and its visit must agree on it.
            return _problem(item, "program", f"differs from the program of visit {target!r}")
    return None


def _is_clinical(record: Any) -> bool:
    return isinstance(field_of(record, "client"), str)


def _earliest_date(record: BaseModel) -> tuple[date, str] | None:
    """The record's earliest date or instant and its field path (`signatures[0].signed_at`), or None."""
    found: tuple[date, str] | None = None
    for path, value in _dates(record, ""):
        # An instant counts by its calendar date where it was written (its own offset): a birth date is local too.
        day = value.date() if isinstance(value, datetime) else value
        if found is None or day < found[0]:
            found = (day, path)
    return found


def _dates(model: BaseModel, prefix: str) -> Iterator[tuple[str, date]]:
    for name, value in model.__dict__.items():
        if isinstance(value, date):  # datetime is a date too
            yield prefix + name, value
        elif isinstance(value, BaseModel):
            yield from _dates(value, f"{prefix}{name}.")
        elif isinstance(value, tuple):
            for i, part in enumerate(value):
                if isinstance(part, BaseModel):
                    yield from _dates(part, f"{prefix}{name}[{i}].")


def _before_birth(
    item: SourcedRecord, earliest: tuple[date, str] | None, accepted: dict[tuple[str, str], SourcedRecord]
) -> Problem | None:
    """A clinical record dated before its client was born: a wrong date or a wrong client, never a fact."""
    if earliest is None:
        return None
    client = accepted.get(("client", field_of(item.record, "client")))
    if client is None or not isinstance(client.record, Client) or earliest[0] >= client.record.birth_date:
        return None
    # Neither date is quoted: a birth date identifies the client.
    return _problem(item, earliest[1], "dated before the client's birth date")


def _problem(item: SourcedRecord, field_name: str, message: str) -> Problem:
    return Problem(message, location=item.source, record_id=item.record.id, field=field_name)
