"""Code system and identifier system URIs, spelled once.

Sources: FHIR R4 terminology pages (terminologies-systems.html) and US Core 6.1/7.0; see
shared/reference/terminology-and-profiles.md §1. ICD-10-CM uses the US URI, never the WHO ``icd-10`` one:
validators reject CM-only codes under it (hapifhir/org.hl7.fhir.core #593).
"""

from __future__ import annotations

from typing import Final

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM: Final = "http://unitsofmeasure.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT: Final = "http://www.ama-assn.org/go/cpt"
NDC: Final = "http://hl7.org/fhir/sid/ndc"
NPI: Final = "http://hl7.org/fhir/sid/us-npi"
NUCC_TAXONOMY: Final = "http://nucc.org/provider-taxonomy"

# terminology.hl7.org code systems
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V3_OBSERVATION_INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
V3_PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_STATUS: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_POLICY: Final = "http://terminology.hl7.org/CodeSystem/consentpolicycodes"
PROVENANCE_PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

# hl7.org/fhir code systems
TASK_CODE: Final = "http://hl7.org/fhir/CodeSystem/task-code"

# US Core
US_CORE_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
US_CORE_CONDITION_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
US_CORE_CAREPLAN_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
US_CORE_PROVENANCE_PARTICIPANT_TYPE: Final = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type"
)

# Other IGs
BSER_TASK_BUSINESS_STATUS: Final = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
