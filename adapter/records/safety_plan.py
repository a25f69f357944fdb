"""A suicide safety plan (Stanley-Brown model): the steps a client takes in a crisis."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from adapter.records.common import EncounterLinked, Instant, RecordId, ShortText, Strict


class Contact(Strict):
    name: ShortText
    phone: ShortText | None = None
    role: ShortText | None = Field(default=None, description="e.g. therapist, sister, 988 lifeline")


class SafetyPlan(EncounterLinked):
    kind: Literal["safety_plan"] = "safety_plan"
    status: Literal["draft", "active", "revoked", "completed", "entered-in-error"] = "active"
    created_at: Instant
    author: RecordId = Field(description="practitioner id")
    warning_signs: tuple[ShortText, ...] = ()
    coping_strategies: tuple[ShortText, ...] = ()
    people_and_places: tuple[ShortText, ...] = Field(default=(), description="for distraction")
    help_contacts: tuple[Contact, ...] = Field(default=(), description="people to ask for help")
    professional_contacts: tuple[Contact, ...] = ()
    crisis_contacts: tuple[Contact, ...] = Field(default=(), description="e.g. 988 Suicide & Crisis Lifeline")
    means_safety: tuple[ShortText, ...] = Field(default=(), description="making the environment safe")
    reasons_for_living: tuple[ShortText, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.warning_signs or self.coping_strategies or self.crisis_contacts or self.means_safety):
            raise ValueError(
                "a safety plan needs at least warning signs, coping strategies, crisis contacts or means safety"
            )
        return self
