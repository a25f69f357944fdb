"""The explicit context every mapping receives: the clock, the id namespace, the clinic's directory.

A mapping never calls ``datetime.now()`` or ``uuid4()``: what varies comes from here, so mapping the same
records with the same context gives byte-identical FHIR.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from adapter import fhir
from adapter.records.chart import Directory

T = TypeVar("T")

DEFAULT_FHIR_BASE = "https://fhir.riverbend.example.org/fhir"
DEFAULT_NAMESPACE = fhir.ID_NAMESPACE


@dataclass(frozen=True, slots=True)
class MappingContext:
    directory: Directory
    fhir_base: str = DEFAULT_FHIR_BASE  # base of fullUrls and of the adapter's own identifier systems
    namespace: uuid.UUID = DEFAULT_NAMESPACE  # uuid5 namespace of resource ids: one per clinic
    recorded_at: datetime | None = None  # Provenance.recorded; None: the newest instant in the client's chart
    # Directory resources mapped once per context and shared by every chart's Bundle (resources are never mutated
    # after mapping: consent redaction rebuilds, it does not edit).
    memo: dict[tuple[str, Any], Any] = field(default_factory=dict, compare=False, repr=False)
    namespace_bytes: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "namespace_bytes", self.namespace.bytes)

    # --- identity -------------------------------------------------------------------------------------------
    def id(self, resource_type: str, *key: str) -> str:
        """fhir.deterministic_id in this clinic's namespace."""
        return fhir.uuid5_text(self.namespace_bytes, "|".join((resource_type, *key)))

    def ref(self, resource_type: str, *key: str, display: str | None = None) -> dict[str, Any]:
        return fhir.reference(resource_type, self.id(resource_type, *key), display)

    def full_url(self, resource: dict[str, Any]) -> str:
        return f"{self.fhir_base}/{resource['resourceType']}/{resource['id']}"

    def record_identifier(self, kind: str, record_id: str, *suffix: str) -> dict[str, Any]:
        """The business identifier of a resource: the clinic record it came from (idempotent sync keys on it)."""
        value = "|".join((record_id, *suffix)) if suffix else record_id
        return {"system": f"{self.fhir_base}/sid/{kind}", "value": value}

    # --- the clinic's directory -----------------------------------------------------------------------------
    # Directory references recur in every chart: built once per context and shared, like every value in a
    # mapped resource, never edited in place (a caller that needs more builds a new dict: {**ref, ...}).
    def _directory(self, slot: str, key: str, build: Callable[[], T]) -> T:
        memo_key = (slot, key)
        found: T | None = self.memo.get(memo_key)
        if found is None:
            found = self.memo[memo_key] = build()
        return found

    def practitioner_ref(self, practitioner_id: str) -> dict[str, Any]:
        return self._directory("ref:practitioner", practitioner_id, lambda: self.ref("Practitioner", practitioner_id))

    def organization_ref(self, organization_id: str) -> dict[str, Any]:
        return self._directory("ref:organization", organization_id, lambda: self.ref("Organization", organization_id))

    def program_ref(self, program_id: str) -> dict[str, Any]:
        """A program is an Organization (type dept) that is part of the clinic's organization."""
        return self._directory("ref:program", program_id, lambda: self.ref("Organization", "program", program_id))

    def program_url(self, program_id: str) -> str:
        """The program's Organization as an absolute URL: the value of `meta.source` on what it produced."""
        return self._directory(
            "url:program",
            program_id,
            lambda: f"{self.fhir_base}/Organization/{self.id('Organization', 'program', program_id)}",
        )

    def clinic_ref(self, program_id: str) -> dict[str, Any]:
        """The organization that runs a program: custodian and author of the clinic's records."""
        return self.organization_ref(self.directory.programs[program_id].organization)

    def is_part2(self, program_id: str) -> bool:
        return self.directory.programs[program_id].part2_program


def fhir_instant(value: datetime) -> str:
    """FHIR instant/dateTime text with seconds and the offset as given (Z for UTC)."""
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def fhir_date(value: date) -> str:
    return value.isoformat()
