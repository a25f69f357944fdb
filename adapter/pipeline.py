"""The mapping service: records in, validated FHIR out, one client at a time. Used by the CLI and the API.

Streaming by client keeps memory flat whatever the size of the export. A client whose resources fail FHIR
validation (a mapping defect, never the user's input) is reported and not emitted: no partial Bundles.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from pydantic_core import ValidationError

from adapter import fhir
from adapter.errors import AdapterError, FhirValidationError, Problem
from adapter.fhir import Resource
from adapter.mappings.bundle import chart_resources, collection_bundle, recorded_instant, shared_ids
from adapter.mappings.context import MappingContext
from adapter.records.chart import Chart, Clinic, assemble
from adapter.records.loader import load_paths
from adapter.schema import validator
from adapter.schema.compile import FAST_CHECKS
from adapter.settings import Settings


@dataclass(frozen=True)
class MappedChart:
    client_id: str
    source: str
    resources: list[Resource]
    records: Chart = field(repr=False)  # the client's records the resources were mapped from
    _ctx: MappingContext = field(repr=False)
    _recorded: datetime = field(repr=False)

    @cached_property
    def bundle(self) -> Resource:
        """The client's collection Bundle (built on first use: NDJSON output never needs it)."""
        return collection_bundle(self.records, self.resources, self._ctx, self._recorded)


@dataclass(slots=True)
class LoadedClinic:
    clinic: Clinic
    problems: list[Problem] = field(default_factory=list)  # input problems: file, record, field
    records_read: int = 0


def load(paths: Sequence[Path]) -> LoadedClinic:
    loaded = load_paths(paths)
    clinic = assemble(loaded.records)
    return LoadedClinic(clinic=clinic, problems=loaded.problems + clinic.problems, records_read=len(loaded.records))


def context(clinic: Clinic, settings: Settings) -> MappingContext:
    return MappingContext(
        directory=clinic.directory,
        fhir_base=settings.fhir_base.rstrip("/"),
        namespace=settings.id_namespace,
        recorded_at=settings.recorded_at,
    )


def validate_resources(resources: Sequence[Resource], *, strict: bool, seen: set[int] | None = None) -> None:
    """Fast compiled validation of every resource; with `strict`, fhir.resources (the reference) as well.

    `seen` holds the ids of resource objects already validated: directory resources are shared, immutable
    objects that appear in every client's Bundle, and need checking once.
    """
    fast = FAST_CHECKS
    for resource in resources:
        if seen is not None:
            if id(resource) in seen:
                continue
            seen.add(id(resource))
        try:
            fast[resource["resourceType"]](resource)
        except (ValidationError, KeyError, TypeError):
            # The full tier decides (the fast one only narrows it) and locates the problems.
            validator.validate(resource)
        if strict:
            fhir.reference_validate(resource)


def map_chart(chart: Chart, ctx: MappingContext, *, strict: bool = False) -> MappedChart:
    recorded = recorded_instant(chart, ctx)
    resources = chart_resources(chart, ctx, recorded)
    shared = shared_ids(ctx)
    own = [r for r in resources if id(r) not in shared]
    validate_resources(own, strict=strict)
    if len(own) < len(resources):  # shared directory resources: each validated once per context
        validated: set[int] = ctx.memo.setdefault(("shared", "validated"), set())
        validate_resources(
            [r for r in resources if id(r) in shared and id(r) not in validated], strict=strict, seen=validated
        )
    return MappedChart(chart.client.id, chart.source, resources, chart, ctx, recorded)


def map_charts(clinic: Clinic, ctx: MappingContext, *, strict: bool = False) -> Iterator[MappedChart | AdapterError]:
    """Each chart's mapping, or the error that kept it from being emitted (named by client record id)."""
    for chart in clinic.charts:
        try:
            yield map_chart(chart, ctx, strict=strict)
        except FhirValidationError as exc:
            yield FhirValidationError(
                f"client {chart.client.id}: mapping produced invalid FHIR (a defect: please report it)",
                [
                    Problem(p.message, location=chart.source, record_id=chart.client.id, field=p.field)
                    for p in exc.problems
                ],
            )
        except AdapterError as exc:
            yield exc
