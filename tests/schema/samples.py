"""Hand-written valid FHIR R4 resources (synthetic data) in canonical JSON form, one builder per sample.

Builders return a fresh dict each call so tests may mutate them. ``phq9_total(i)`` and ``care_plan(i)`` are the
shapes of shared/reference/performance.md §2 (PHQ-9 total with 9 hasMember; CarePlan with 3 goals and 4
activity.detail) and vary with ``i`` the way a mapping would.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

Resource = dict[str, Any]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
XHTML_DIV = '<div xmlns="http://www.w3.org/1999/xhtml">'
PATIENT = "Patient/0b8f6c3e-2f5d-4c61-9a4e-6c1d2e3f4a5b"
PRACTITIONER = "Practitioner/prac-7"
ORGANIZATION = "Organization/clinic-1"
PHQ9_ITEMS = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8")


def _cc(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    concept: dict[str, Any] = {"coding": [coding]}
    if text:
        concept["text"] = text
    return concept


def phq9_total(i: int = 0) -> Resource:
    return {
        "resourceType": "Observation",
        "id": f"phq9-total-{i}",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-survey"]},
        "status": "final",
        "category": [_cc("http://terminology.hl7.org/CodeSystem/observation-category", "survey", "Survey")],
        "code": _cc(LOINC, "44261-6", "Patient Health Questionnaire 9 item total", "PHQ-9 total score"),
        "subject": {"reference": PATIENT, "display": "Synthetic Patient"},
        "effectiveDateTime": f"2024-03-{1 + i % 28:02d}T09:30:00-05:00",
        "issued": "2024-03-05T14:31:12.000Z",
        "performer": [{"reference": PRACTITIONER}],
        "valueQuantity": {"value": 10 + i % 17, "unit": "{score}", "system": UCUM, "code": "{score}"},
        "interpretation": [_cc(SNOMED, "710842001", "Moderate depression", "Moderate")],
        "hasMember": [{"reference": f"Observation/phq9-{i}-{code}"} for code in PHQ9_ITEMS],
    }


def phq9_panel() -> Resource:
    """A panel: members only, no value (the R4 pattern for a questionnaire's grouping Observation)."""
    return {
        "resourceType": "Observation",
        "id": "phq9-panel-1",
        "status": "final",
        "code": _cc(LOINC, "44249-1", "PHQ-9 quick depression assessment panel"),
        "subject": {"reference": PATIENT},
        "effectiveDateTime": "2024-03-05",
        "hasMember": [
            {"reference": "Observation/phq9-total-0"},
            {"reference": "QuestionnaireResponse/qr-phq9-1"},
        ],
    }


def questionnaire_response() -> Resource:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-phq9-1",
        "questionnaire": "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": PATIENT},
        "authored": "2024-03-05T09:30:00-05:00",
        "author": {"reference": PATIENT},
        "item": [
            {
                "linkId": "/44250-9",
                "text": "Little interest or pleasure in doing things",
                "answer": [{"valueCoding": {"system": LOINC, "code": "LA6569-3", "display": "Several days"}}],
            },
            {
                "linkId": "group-1",
                "item": [{"linkId": "/44261-6", "answer": [{"valueInteger": 14}]}],
            },
        ],
    }


def patient() -> Resource:
    return {
        "resourceType": "Patient",
        "id": "0b8f6c3e-2f5d-4c61-9a4e-6c1d2e3f4a5b",
        "identifier": [
            {
                "use": "usual",
                "type": _cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MR"),
                "system": "urn:oid:2.16.840.1.113883.3.4321.1",
                "value": "MRN-000123",
                "assigner": {"reference": ORGANIZATION},
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": "Testperson", "given": ["Alex", "J."], "_given": [None, {"id": "i"}]}],
        "telecom": [
            {"system": "phone", "value": "555-0100", "use": "mobile", "rank": 1},
            {"system": "email", "value": "alex@example.org"},
        ],
        "gender": "other",
        "birthDate": "1990-02-28",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1990-02-28T08:15:00-05:00",
                }
            ]
        },
        "address": [
            {
                "use": "home",
                "type": "physical",
                "line": ["1 Main St"],
                "city": "Springfield",
                "state": "MA",
                "postalCode": "01101",
                "country": "US",
                "period": {"start": "2020-01"},
            }
        ],
        "communication": [{"language": _cc("urn:ietf:bcp:47", "en-US", "English (United States)"), "preferred": True}],
        "generalPractitioner": [{"reference": PRACTITIONER}],
        "managingOrganization": {"reference": ORGANIZATION},
    }


def practitioner() -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": "prac-7",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        "name": [{"family": "Rivera", "given": ["Sam"], "prefix": ["Dr."]}],
        "gender": "female",
    }


def organization() -> Resource:
    return {
        "resourceType": "Organization",
        "id": "clinic-1",
        "active": True,
        "name": "Synthetic Behavioral Health Clinic",
        "telecom": [{"system": "url", "value": "https://clinic.example.org"}],
    }


def condition() -> Resource:
    return {
        "resourceType": "Condition",
        "id": "cond-mdd-1",
        "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
        "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
        "category": [_cc("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")],
        "code": {
            "coding": [
                {"system": ICD10CM, "code": "F33.1", "display": "Major depressive disorder, recurrent, moderate"},
                {"system": SNOMED, "code": "18818009"},
            ],
            "text": "MDD, recurrent, moderate",
        },
        "subject": {"reference": PATIENT},
        "onsetDateTime": "2019-06",
        "recordedDate": "2024-03-05T10:00:00Z",
        "recorder": {"reference": PRACTITIONER},
    }


def care_plan(i: int = 0, *, with_reference: bool = False) -> Resource:
    """3 goals and 4 activities; with_reference makes the last activity a reference to a ServiceRequest."""
    activities: list[dict[str, Any]] = [
        {
            "detail": {
                "kind": "ServiceRequest",
                "code": _cc(SNOMED, code, display),
                "status": status,
                "scheduledPeriod": {"start": f"2024-03-{1 + i % 28:02d}", "end": "2024-06-30"},
                "performer": [{"reference": PRACTITIONER}],
                "description": display,
            }
        }
        for code, display, status in (
            ("304891004", "Cognitive behavioral therapy", "in-progress"),
            ("228557008", "Cognitive and behavioral therapy", "scheduled"),
            ("410223002", "Mental health care", "not-started"),
            ("386053000", "Evaluation procedure", "not-started"),
        )
    ]
    if with_reference:
        activities[-1] = {"reference": {"reference": "ServiceRequest/sr-ref-1"}}
    return {
        "resourceType": "CarePlan",
        "id": f"careplan-{i}",
        "text": {"status": "generated", "div": f"{XHTML_DIV}<p>Depression treatment plan {i}</p></div>"},
        "status": "active",
        "intent": "plan",
        "category": [_cc("http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan")],
        "title": "Depression treatment plan",
        "subject": {"reference": PATIENT},
        "period": {"start": "2024-03-05"},
        "created": "2024-03-05T10:00:00-05:00",
        "author": {"reference": PRACTITIONER},
        "addresses": [{"reference": "Condition/cond-mdd-1"}],
        "goal": [{"reference": f"Goal/goal-{i}-{n}"} for n in range(3)],
        "activity": activities,
    }


def goal() -> Resource:
    return {
        "resourceType": "Goal",
        "id": "goal-0-0",
        "lifecycleStatus": "active",
        "achievementStatus": _cc("http://terminology.hl7.org/CodeSystem/goal-achievement", "improving"),
        "description": {"text": "PHQ-9 below 10"},
        "subject": {"reference": PATIENT},
        "startDate": "2024-03-05",
        "target": [
            {
                "measure": _cc(LOINC, "44261-6"),
                "detailQuantity": {
                    "value": Decimal("10"),
                    "comparator": "<",
                    "unit": "{score}",
                    "system": UCUM,
                    "code": "{score}",
                },
                "dueDate": "2024-06-30",
            }
        ],
        "addresses": [{"reference": "Condition/cond-mdd-1"}],
    }


def service_request() -> Resource:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr-ref-1",
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "category": [_cc(SNOMED, "306362008", "Referral to psychiatry service")],
        "code": _cc(SNOMED, "306136006", "Referral to psychiatry service"),
        "subject": {"reference": PATIENT},
        "occurrencePeriod": {"start": "2024-03-10"},
        "authoredOn": "2024-03-05T10:05:00-05:00",
        "requester": {"reference": PRACTITIONER},
        "reasonReference": [{"reference": "Condition/cond-mdd-1"}],
    }


def task() -> Resource:
    return {
        "resourceType": "Task",
        "id": "task-1",
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": _cc("http://hl7.org/fhir/CodeSystem/task-code", "fulfill"),
        "focus": {"reference": "ServiceRequest/sr-ref-1"},
        "for": {"reference": PATIENT},
        "authoredOn": "2024-03-05T10:06:00-05:00",
        "requester": {"reference": PRACTITIONER},
        "owner": {"reference": ORGANIZATION},
        "restriction": {"period": {"end": "2024-03-31"}},
    }


def consent() -> Resource:
    return {
        "resourceType": "Consent",
        "id": "consent-part2-1",
        "status": "active",
        "scope": _cc("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [_cc(LOINC, "59284-0", "Patient Consent")],
        "patient": {"reference": PATIENT},
        "dateTime": "2024-03-05T10:00:00-05:00",
        "organization": [{"reference": ORGANIZATION}],
        "policyRule": _cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN"),
        "provision": {
            "type": "deny",
            "period": {"start": "2024-03-05", "end": "2025-03-05"},
            "provision": [
                {
                    "type": "permit",
                    "actor": [
                        {
                            "role": _cc("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"),
                            "reference": {"reference": ORGANIZATION},
                        }
                    ],
                    "action": [_cc("http://terminology.hl7.org/CodeSystem/consentaction", "access")],
                    "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}],
                    "data": [{"meaning": "related", "reference": {"reference": "Condition/cond-mdd-1"}}],
                }
            ],
        },
    }


def provenance() -> Resource:
    return {
        "resourceType": "Provenance",
        "id": "prov-1",
        "target": [{"reference": "Observation/phq9-total-0"}, {"reference": "CarePlan/careplan-0"}],
        "recorded": "2024-03-05T15:00:00.123+00:00",
        "activity": _cc("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "CREATE"),
        "agent": [
            {
                "type": _cc("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author"),
                "who": {"reference": PRACTITIONER},
                "onBehalfOf": {"reference": ORGANIZATION},
            }
        ],
        "entity": [{"role": "source", "what": {"display": "clinic export 2024-03-05"}}],
    }


def document_reference() -> Resource:
    return {
        "resourceType": "DocumentReference",
        "id": "doc-note-1",
        "status": "current",
        "docStatus": "final",
        "type": _cc(LOINC, "11488-4", "Consult note"),
        "subject": {"reference": PATIENT},
        "date": "2024-03-05T16:00:00Z",
        "author": [{"reference": PRACTITIONER}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "language": "en-US",
                    "data": "U3ludGhldGljIHByb2dyZXNzIG5vdGUu",
                    "title": "Progress note",
                    "creation": "2024-03-05T15:55:00Z",
                }
            }
        ],
        "context": {"encounter": [{"reference": "Encounter/enc-1"}], "period": {"start": "2024-03-05T09:00:00Z"}},
    }


def flag() -> Resource:
    return {
        "resourceType": "Flag",
        "id": "flag-safety-1",
        "status": "active",
        "category": [_cc("http://terminology.hl7.org/CodeSystem/flag-category", "safety")],
        "code": _cc(SNOMED, "225444004", "At risk for suicide"),
        "subject": {"reference": PATIENT},
        "period": {"start": "2024-03-05"},
        "author": {"reference": PRACTITIONER},
    }


def medication_request() -> Resource:
    return {
        "resourceType": "MedicationRequest",
        "id": "medrx-1",
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "medicationCodeableConcept": _cc(RXNORM, "312938", "sertraline 50 MG Oral Tablet"),
        "subject": {"reference": PATIENT},
        "authoredOn": "2024-03-05",
        "requester": {"reference": PRACTITIONER},
        "reasonReference": [{"reference": "Condition/cond-mdd-1"}],
        "dosageInstruction": [
            {
                "sequence": 1,
                "text": "50 mg by mouth once daily in the morning",
                "timing": {"repeat": {"frequency": 1, "period": Decimal("1"), "periodUnit": "d", "when": ["MORN"]}},
                "route": _cc(SNOMED, "26643006", "Oral route"),
                "doseAndRate": [{"doseQuantity": {"value": Decimal("50"), "unit": "mg", "system": UCUM, "code": "mg"}}],
            }
        ],
        "dispenseRequest": {"numberOfRepeatsAllowed": 2, "quantity": {"value": 30, "unit": "tablet"}},
    }


def medication_statement() -> Resource:
    return {
        "resourceType": "MedicationStatement",
        "id": "medstmt-1",
        "status": "active",
        "medicationCodeableConcept": _cc(RXNORM, "312938"),
        "subject": {"reference": PATIENT},
        "effectivePeriod": {"start": "2024-01-15"},
        "dateAsserted": "2024-03-05T10:00:00-05:00",
        "informationSource": {"reference": PATIENT},
        "dosage": [{"text": "50 mg daily", "timing": {"repeat": {"dayOfWeek": ["mon", "wed", "fri"]}}}],
    }


def encounter() -> Resource:
    return {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
        "type": [_cc(SNOMED, "185347001", "Encounter for problem")],
        "subject": {"reference": PATIENT},
        "participant": [{"individual": {"reference": PRACTITIONER}}],
        "period": {"start": "2024-03-05T09:00:00-05:00", "end": "2024-03-05T09:50:00-05:00"},
        "reasonReference": [{"reference": "Condition/cond-mdd-1"}],
        "serviceProvider": {"reference": ORGANIZATION},
    }


def bundle() -> Resource:
    members = (patient(), phq9_total(), condition(), care_plan(with_reference=True), consent(), medication_request())
    return {
        "resourceType": "Bundle",
        "id": "bundle-1",
        "type": "collection",
        "timestamp": "2024-03-05T17:00:00Z",
        "entry": [
            {"fullUrl": f"https://fhir.example.org/r4/{r['resourceType']}/{r['id']}", "resource": r} for r in members
        ],
    }


SAMPLES: dict[str, Callable[[], Resource]] = {
    "phq9_total": phq9_total,
    "phq9_panel": phq9_panel,
    "questionnaire_response": questionnaire_response,
    "patient": patient,
    "practitioner": practitioner,
    "organization": organization,
    "condition": condition,
    "care_plan": lambda: care_plan(with_reference=True),
    "goal": goal,
    "service_request": service_request,
    "task": task,
    "consent": consent,
    "provenance": provenance,
    "document_reference": document_reference,
    "flag": flag,
    "medication_request": medication_request,
    "medication_statement": medication_statement,
    "encounter": encounter,
    "bundle": bundle,
}
