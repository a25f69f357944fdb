"""Progress note -> US Core DocumentReference, typed by note kind (LOINC Document Ontology)."""

from __future__ import annotations

import base64
from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.codes import note_type_concept
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import drop_empty, meta
from adapter.records import ProgressNote

_CLINICAL_NOTE = fhir.concept(profiles.US_CORE_DOCREF_CATEGORY, "clinical-note", "Clinical Note")
# LOINC has no type for psychotherapy notes (45 CFR 164.501) or SUD counseling notes (42 CFR 2.11), which share the
# mental-health progress note code; the adapter's own code tells them apart, because each needs its own consent.
_NOTE_KIND_DISPLAY = {
    "progress-note": "Progress note",
    "psychotherapy-note": "Psychotherapy note",
    "sud-counseling-note": "SUD counseling note",
}


def note_type(note_kind: str) -> dict[str, Any]:
    concept = note_type_concept(note_kind)
    adapter_coding = fhir.coding(profiles.ADAPTER_CODES, note_kind, _NOTE_KIND_DISPLAY[note_kind])
    return {"coding": [*concept.get("coding", []), adapter_coding], "text": concept["text"]}


def to_fhir(note: ProgressNote, ctx: MappingContext) -> list[Resource]:
    data = base64.b64encode(note.text.encode("utf-8")).decode("ascii")
    resource = {
        "resourceType": "DocumentReference",
        "id": ctx.id("DocumentReference", note.id),
        "meta": meta(profiles.US_CORE_DOCUMENT_REFERENCE),
        "identifier": [ctx.record_identifier("progress-note", note.id)],
        "status": note.status,
        "docStatus": "final",
        "type": note_type(note.note_kind),
        "category": [_CLINICAL_NOTE],
        "subject": ctx.ref("Patient", note.client),
        "date": fhir_instant(note.written_at),
        "author": [ctx.practitioner_ref(note.author)],
        "custodian": ctx.clinic_ref(note.program),
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": data,
                    "creation": fhir_instant(note.written_at),
                }
            }
        ],
        "context": {
            "encounter": [ctx.ref("Encounter", note.visit)] if note.visit else None,
            "practiceSetting": {"text": ctx.directory.programs[note.program].name},
        },
    }
    resource["context"] = drop_empty(resource["context"])  # type: ignore[arg-type]
    return [drop_empty(resource)]
