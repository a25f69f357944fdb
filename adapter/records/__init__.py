"""The clinic's record model (input side): one module per record kind, one discriminated union of all."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from adapter.records.assessment import Assessment
from adapter.records.client import Client, RelatedParty
from adapter.records.consent import Consent
from adapter.records.diagnosis import Diagnosis
from adapter.records.directory import Organization, Practitioner, Program
from adapter.records.medication import MedicationOrder, ReportedMedication
from adapter.records.note import ProgressNote
from adapter.records.plan import TreatmentPlan
from adapter.records.referral import Referral
from adapter.records.safety_plan import SafetyPlan
from adapter.records.visit import Visit

DirectoryRecord = Practitioner | Organization | Program
ClinicalRecordKind = (
    Assessment
    | Diagnosis
    | TreatmentPlan
    | SafetyPlan
    | Referral
    | ProgressNote
    | Consent
    | MedicationOrder
    | ReportedMedication
    | Visit
)
Record = Annotated[
    Client | DirectoryRecord | ClinicalRecordKind,
    Field(discriminator="kind"),
]
RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)

RECORD_KINDS: dict[str, type] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        Client,
        Practitioner,
        Organization,
        Program,
        Assessment,
        Diagnosis,
        TreatmentPlan,
        SafetyPlan,
        Referral,
        ProgressNote,
        Consent,
        MedicationOrder,
        ReportedMedication,
        Visit,
    )
}

__all__ = [
    "RECORD_ADAPTER",
    "RECORD_KINDS",
    "Assessment",
    "Client",
    "ClinicalRecordKind",
    "Consent",
    "Diagnosis",
    "DirectoryRecord",
    "MedicationOrder",
    "Organization",
    "Practitioner",
    "Program",
    "ProgressNote",
    "Record",
    "Referral",
    "RelatedParty",
    "ReportedMedication",
    "SafetyPlan",
    "TreatmentPlan",
    "Visit",
]
