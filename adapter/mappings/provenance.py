"""One Provenance per mapped batch: what the clinic's records became, who authored and who transmitted them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import meta
from adapter.terminology import systems

_AUTHOR = fhir.concept(systems.PROVENANCE_PARTICIPANT_TYPE, "author", "Author")
_TRANSMITTER = fhir.concept(systems.US_CORE_PROVENANCE_PARTICIPANT_TYPE, "transmitter", "Transmitter")
_SOURCE_SYSTEM = "Clinic EHR export"
_CREATE = fhir.concept("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "CREATE", "create")


def batch_provenance(
    batch_key: str,
    targets: list[Resource],
    *,
    author: dict[str, Any],
    transmitter: dict[str, Any],
    recorded: datetime,
    ctx: MappingContext,
) -> Resource:
    """`author` is the organization whose records these are; `transmitter` the one sending them on."""
    return {
        "resourceType": "Provenance",
        "id": ctx.id("Provenance", "batch", batch_key),
        "meta": meta(profiles.US_CORE_PROVENANCE),
        "target": [fhir.reference(r["resourceType"], r["id"]) for r in targets],
        "recorded": fhir_instant(recorded),
        "activity": _CREATE,
        "agent": [
            {"type": _AUTHOR, "who": author},
            {"type": _TRANSMITTER, "who": transmitter},
        ],
        "entity": [{"role": "source", "what": {"display": _SOURCE_SYSTEM}}],
    }
