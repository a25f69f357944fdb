"""A client's chart -> the FHIR resources it becomes, and the collection Bundle that carries them.

Pure: the same chart and context give the same resources in the same order, byte for byte once serialized.
The Bundle is self-contained: it carries the practitioners and organizations its resources reference.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import AwareDatetime, BaseModel

from adapter.errors import InputError, Problem
from adapter.fhir import Resource
from adapter.mappings import (
    assessment,
    careplan,
    condition,
    consent,
    directory,
    encounter,
    medication,
    note,
    patient,
    referral,
    safety_plan,
)
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.provenance import batch_provenance
from adapter.records.chart import Chart

Mapper = Callable[[Any, MappingContext], list[Resource]]

# Chart lists in the order their resources appear in the Bundle: visits first, since the rest name them.
CHART_MAPPERS: tuple[tuple[str, Mapper], ...] = (
    ("visits", encounter.to_fhir),
    ("diagnoses", condition.to_fhir),
    ("assessments", assessment.to_fhir),
    ("treatment_plans", careplan.to_fhir),
    ("safety_plans", safety_plan.to_fhir),
    ("referrals", referral.to_fhir),
    ("notes", note.to_fhir),
    ("medication_orders", medication.order_to_fhir),
    ("reported_medications", medication.reported_to_fhir),
    ("consents", consent.to_fhir),
)


def with_source(resource: Resource, source: str) -> Resource:
    """Stamp `meta.source` with the program that produced the record: the consent engine judges Part 2 status by
    source, never by codes. `meta` goes right after `id`, where FHIR lists it."""
    meta = resource.get("meta")
    if meta is not None:
        meta["source"] = source
        return resource
    head = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": {"source": source}}
    return head | {k: v for k, v in resource.items() if k not in head}


def clinical_resources(chart: Chart, ctx: MappingContext) -> list[Resource]:
    """The chart's resources, each stamped with the program its record came from (the client's registering
    program for Patient and RelatedPerson)."""
    resources = []
    if chart.client.program:
        source = ctx.program_url(chart.client.program)
        resources += [with_source(r, source) for r in patient.to_fhir(chart.client, ctx)]
    else:
        resources += patient.to_fhir(chart.client, ctx)
    for attribute, mapper in CHART_MAPPERS:
        for record in getattr(chart, attribute):
            source = ctx.program_url(record.program)
            resources += [with_source(r, source) for r in mapper(record, ctx)]
    return resources


def directory_resources(chart: Chart, ctx: MappingContext) -> list[Resource]:
    """The programs, organizations and practitioners the chart's records link to (parents of programs and of
    organizations included), each mapped once per context; the list once per distinct set of links."""
    links = frozenset(chart.directory_links)
    slot = ("directory:links", links)
    found: list[Resource] | None = ctx.memo.get(slot)
    if found is None:
        found = ctx.memo[slot] = _directory_resources(links, ctx)
    return list(found)


def _directory_resources(links: frozenset[tuple[str, str]], ctx: MappingContext) -> list[Resource]:
    d = ctx.directory
    practitioners = {target for kind, target in links if kind == "practitioner"}
    organizations = {target for kind, target in links if kind == "organization"}
    programs = {target for kind, target in links if kind == "program"}
    organizations.update(d.programs[p].organization for p in programs)
    pending = list(organizations)
    while pending:  # walk partOf chains up to the top organization
        parent = d.organizations[pending.pop()].part_of
        if parent and parent not in organizations:
            organizations.add(parent)
            pending.append(parent)

    def memo(kind: str, key: str, build: Callable[[str], Resource]) -> Resource:
        slot = (f"directory:{kind}", key)
        if slot not in ctx.memo:
            ctx.memo[slot] = resource = build(key)
            shared_ids(ctx).add(id(resource))
        return ctx.memo[slot]  # type: ignore[no-any-return]

    out = [memo("program", p, lambda k: directory.program(d.programs[k], ctx)) for p in sorted(programs)]
    out += [
        memo("organization", o, lambda k: directory.organization(d.organizations[k], ctx))
        for o in sorted(organizations)
    ]
    out += [
        memo("practitioner", p, lambda k: directory.practitioner(d.practitioners[k], ctx))
        for p in sorted(practitioners)
    ]
    return out


def _may_hold_instants(annotation: Any, seen: frozenset[type] = frozenset()) -> bool:
    """Could a field of this type contain a datetime (directly or in nested record parts)?"""
    if annotation in (datetime, AwareDatetime):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:  # a recursive part: whatever it holds, its first occurrence answers
            return False
        inner = seen | {annotation}
        return any(_may_hold_instants(f.annotation, inner) for f in annotation.model_fields.values())
    return any(_may_hold_instants(arg, seen) for arg in typing.get_args(annotation))


@cache
def _instant_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of a record model that may hold datetimes: the rest (texts, codes, dates) is never visited."""
    return tuple(name for name, f in model.model_fields.items() if _may_hold_instants(f.annotation))


def _instants(records: list[Any]) -> Iterator[datetime]:
    """Every datetime in the records, nested parts included (an explicit stack: this runs once per chart)."""
    stack = list(records)
    while stack:
        node = stack.pop()
        if isinstance(node, datetime):
            yield node
        elif isinstance(node, BaseModel):
            stack.extend(getattr(node, name) for name in _instant_fields(type(node)))
        elif isinstance(node, tuple | list):
            stack.extend(node)


def shared_ids(ctx: MappingContext) -> set[int]:
    """id() of the directory resources mapped in this context: one object each, shared by every Bundle and kept
    alive by the context (so their ids are never reused)."""
    return ctx.memo.setdefault(("shared", "ids"), set())  # type: ignore[no-any-return]


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def newest_instant(chart: Chart) -> datetime:
    """The latest timestamp in a chart: the default Provenance.recorded, so output does not depend on the clock."""
    return max(_instants(list(chart.records())), default=_EPOCH)


def recorded_instant(chart: Chart, ctx: MappingContext) -> datetime:
    return ctx.recorded_at or newest_instant(chart)


def chart_resources(chart: Chart, ctx: MappingContext, recorded: datetime | None = None) -> list[Resource]:
    """Every resource of one client's Bundle, in Bundle order, the batch Provenance last."""
    clinical = clinical_resources(chart, ctx)
    resources = clinical + directory_resources(chart, ctx)
    # The author of the batch is the organization that runs the program holding the client's records.
    program = chart.client.program or next(
        (r.program for r in chart.records() if hasattr(r, "program") and r.program), None
    )
    if program is None:  # assemble() rejects such a client; a chart built elsewhere gets the same clear error
        raise InputError(
            f"client {chart.client.id}: a client with no records needs the program that registered it",
            [Problem("no program: the records' custodian is unknown", record_id=chart.client.id, field="program")],
        )
    clinic = ctx.clinic_ref(program)
    resources.append(
        batch_provenance(
            chart.client.id,
            clinical,
            author=clinic,
            transmitter=clinic,
            recorded=recorded or recorded_instant(chart, ctx),
            ctx=ctx,
        )
    )
    return resources


def collection_bundle(
    chart: Chart, resources: list[Resource], ctx: MappingContext, recorded: datetime | None = None
) -> Resource:
    recorded = recorded or recorded_instant(chart, ctx)
    return {
        "resourceType": "Bundle",
        "id": ctx.id("Bundle", chart.client.id),
        "identifier": ctx.record_identifier("client-bundle", chart.client.id),
        "type": "collection",
        "timestamp": fhir_instant(recorded),
        "entry": [{"fullUrl": ctx.full_url(r), "resource": r} for r in resources],
    }
