"""Clinical notes. Psychotherapy notes (45 CFR 164.501) and SUD counseling notes carry their own protections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from adapter.records.common import EncounterLinked, Instant, RecordId, Text

NoteKind = Literal["progress-note", "psychotherapy-note", "sud-counseling-note"]


class ProgressNote(EncounterLinked):
    kind: Literal["progress_note"] = "progress_note"
    note_kind: NoteKind
    author: RecordId = Field(description="practitioner id")
    written_at: Instant
    status: Literal["current", "superseded", "entered-in-error"] = "current"
    text: Text
