"""Profile canonicals and code systems the mappings use beyond adapter.terminology.systems.

US Core 6.1.0 profiles (hl7.org/fhir/us/core/STU6.1/profiles-and-extensions.html), cited unversioned as US Core
examples do. Resources US Core does not profile (Consent, Task, Flag, MedicationStatement) carry no profile.
"""

from __future__ import annotations

from typing import Final

_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
US_CORE_PATIENT: Final = _US_CORE + "us-core-patient"
US_CORE_RELATED_PERSON: Final = _US_CORE + "us-core-relatedperson"
US_CORE_PRACTITIONER: Final = _US_CORE + "us-core-practitioner"
US_CORE_ORGANIZATION: Final = _US_CORE + "us-core-organization"
US_CORE_SCREENING: Final = _US_CORE + "us-core-observation-screening-assessment"
US_CORE_QUESTIONNAIRE_RESPONSE: Final = _US_CORE + "us-core-questionnaireresponse"
US_CORE_CONDITION_PROBLEMS: Final = _US_CORE + "us-core-condition-problems-health-concerns"
US_CORE_CAREPLAN: Final = _US_CORE + "us-core-careplan"
US_CORE_GOAL: Final = _US_CORE + "us-core-goal"
US_CORE_SERVICE_REQUEST: Final = _US_CORE + "us-core-servicerequest"
US_CORE_DOCUMENT_REFERENCE: Final = _US_CORE + "us-core-documentreference"
US_CORE_MEDICATION_REQUEST: Final = _US_CORE + "us-core-medicationrequest"
US_CORE_ENCOUNTER: Final = _US_CORE + "us-core-encounter"
US_CORE_PROVENANCE: Final = _US_CORE + "us-core-provenance"

# Code systems (FHIR R4 terminology; URLs as listed on hl7.org/fhir/R4/terminologies-systems.html).
BCP47: Final = "urn:ietf:bcp:47"
V3_ROLE_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ORGANIZATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/organization-type"
FLAG_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_PRIORITY: Final = "http://hl7.org/fhir/flag-priority-code"
FLAG_DETAIL_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/flag-detail"
FLAG_PRIORITY_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/flag-priority"
MEDREQ_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
MEDSTATEMENT_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/medication-statement-category"
US_CORE_DOCREF_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
SIGNATURE_TYPE: Final = "urn:iso-astm:E1762-95:2013"
V3_ACT_CODE_CLASS_AMB: Final = "AMB"

# The adapter's own code system for concepts no standard code covers (safety-plan sections, the Part 2 program
# marker, recipient classes), documented in docs/mapping.md. Fixed, so the consent engine knows it everywhere.
ADAPTER_CODES: Final = "https://bh-fhir-adapter.dev/fhir/CodeSystem/bh-adapter"
RECIPIENT_CLASS_SYSTEM: Final = "https://bh-fhir-adapter.dev/fhir/sid/recipient-class"
