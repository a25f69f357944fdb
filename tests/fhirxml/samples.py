"""Hand-written FHIR R4 resources in canonical JSON form (synthetic data), varied enough to exercise every
XML rule: decimals with significant zeros, instants with milliseconds and "Z", primitive extensions and
arrays with null placeholders, nested backbones, contained resources, choice types, XHTML narrative, and a
Bundle of several."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'
PATIENT_REF = {"reference": "Patient/pat-1", "display": "Synthetic Patient"}
PRACTITIONER_REF = {"reference": "Practitioner/prac-1"}

PHQ9_ITEMS = [
    ("44250-9", 2),  # little interest or pleasure
    ("44255-8", 2),  # feeling down, depressed
    ("44259-0", 1),  # sleep
    ("44254-1", 2),  # tired
    ("44251-7", 1),  # appetite
    ("44258-2", 2),  # feeling bad about yourself
    ("44252-5", 2),  # trouble concentrating
    ("44253-3", 1),  # moving or speaking slowly
    ("44260-8", 1),  # thoughts of self-harm
]

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "phq9-total-1",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-survey"]},
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "survey",
                    "display": "Survey",
                }
            ]
        }
    ],
    "code": {
        "coding": [{"system": LOINC, "code": "44261-6", "display": "Patient Health Questionnaire 9 item total"}],
        "text": "PHQ-9 total score",
    },
    "subject": PATIENT_REF,
    "effectiveDateTime": "2024-03-05T09:30:00-05:00",
    "issued": "2024-03-05T14:31:12.000Z",  # fhir.resources would drop the ".000"
    "performer": [PRACTITIONER_REF],
    # PHQ-9 totals are whole numbers; the ".50" is here to prove decimal text survives both ways.
    "valueQuantity": {"value": Decimal("14.50"), "unit": "{score}", "system": UCUM, "code": "{score}"},
    "interpretation": [
        {
            "coding": [{"system": SNOMED, "code": "710842001", "display": "Moderate depression"}],
            "text": "Moderate",
        }
    ],
    "referenceRange": [{"low": {"value": 0}, "high": {"value": 27}, "text": "0-27"}],
    "hasMember": [{"reference": f"Observation/phq9-item-{i}"} for i in range(1, 10)],
    "derivedFrom": [{"reference": "QuestionnaireResponse/qr-phq9-1"}],
}

QUESTIONNAIRE_RESPONSE: dict[str, Any] = {
    "resourceType": "QuestionnaireResponse",
    "id": "qr-phq9-1",
    "questionnaire": "http://loinc.org/q/44249-1",
    "status": "completed",
    "subject": PATIENT_REF,
    "authored": "2024-03-05T09:30:00-05:00",
    "author": PATIENT_REF,
    "item": [
        {
            "linkId": "phq9",
            "text": "Over the last 2 weeks, how often have you been bothered by the following problems?",
            "item": [
                {
                    "linkId": code,
                    "answer": [
                        {
                            "valueCoding": {
                                "system": LOINC,
                                "code": f"LA6568-{score}",
                                "display": ["Not at all", "Several days", "More than half the days"][score],
                            },
                            "item": [{"linkId": f"{code}-score", "answer": [{"valueInteger": score}]}],
                        }
                    ],
                }
                for code, score in PHQ9_ITEMS
            ],
        },
        {"linkId": "44261-6", "text": "Total score", "answer": [{"valueInteger": 14}]},
        {"linkId": "comment", "answer": [{"valueString": 'Line one\nline two\t& <tabbed> "quoted"'}]},
        {"linkId": "consented", "answer": [{"valueBoolean": True}]},
        {"linkId": "weight", "answer": [{"valueDecimal": Decimal("72.0")}]},
    ],
}

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "extension": [
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [
                {
                    "url": "ombCategory",
                    "valueCoding": {
                        "system": "urn:oid:2.16.840.1.113883.6.238",
                        "code": "2106-3",
                        "display": "White",
                    },
                },
                {"url": "text", "valueString": "White"},
            ],
        },
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
            "valueCode": "F",
        },
    ],
    "identifier": [
        {
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": "urn:oid:2.16.840.1.113883.19.5",
            "value": "MRN-000123",
        }
    ],
    "active": True,
    "name": [
        {"use": "official", "family": "Testpatient", "given": ["Alex", "Jordan"]},
        {
            "use": "nickname",
            "given": ["AJ", None],
            "_given": [
                None,
                {"extension": [{"url": "http://example.org/fhir/given-note", "valueString": "x"}]},
            ],
        },
    ],
    "telecom": [{"system": "phone", "value": "555-0100", "use": "mobile", "rank": 1}],
    "gender": "female",
    "birthDate": "1988-07-14",
    "_birthDate": {
        "id": "bd1",
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1988-07-14T06:12:00-04:00",
            }
        ],
    },
    "deceasedBoolean": False,
    "address": [{"line": ["1 Synthetic Way", "Apt 2"], "city": "Springfield", "state": "MA", "postalCode": "01101"}],
    "communication": [
        {
            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]},
            "preferred": True,
        }
    ],
}

CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "cond-1",
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "verificationStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]
    },
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/sid/icd-10-cm",
                "code": "F32.1",
                "display": "Major depressive disorder, single episode, moderate",
            }
        ]
    },
    "subject": PATIENT_REF,
    "onsetDateTime": "2024-02",
    "recordedDate": "2024-03-05",
    "evidence": [{"detail": [{"reference": "Observation/phq9-total-1"}]}],
    "note": [{"authorReference": PRACTITIONER_REF, "time": "2024-03-05T10:00:00Z", "text": "Discussed **plan**."}],
}

CARE_PLAN: dict[str, Any] = {
    "resourceType": "CarePlan",
    "id": "cp-1",
    "text": {
        "status": "generated",
        "div": (
            f"<div {XHTML}><p>Care plan for <b>depression</b> &amp; anxiety</p>"
            '<ul><li>Weekly CBT<br/>sessions</li><li class="x">Repeat PHQ-9 in <i>4</i> weeks</li></ul>'
            "<table><tr><td>Goal</td><td>PHQ-9 &lt; 10</td></tr></table>  <p>Non-ASCII: café, 日本</p></div>"
        ),
    },
    "status": "active",
    "intent": "plan",
    "category": [
        {"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan"}]}
    ],
    "title": "Depression care plan",
    "subject": PATIENT_REF,
    "period": {"start": "2024-03-05"},
    "created": "2024-03-05T10:15:00-05:00",
    "author": PRACTITIONER_REF,
    "addresses": [{"reference": "Condition/cond-1"}],
    "goal": [{"reference": "Goal/goal-1"}],
    "activity": [
        {
            "detail": {
                "kind": "ServiceRequest",
                "code": {
                    "coding": [{"system": SNOMED, "code": "304891004", "display": "Cognitive behavioral therapy"}]
                },
                "status": "scheduled",
                "scheduledTiming": {"repeat": {"frequency": 1, "period": Decimal("1"), "periodUnit": "wk"}},
                "performer": [PRACTITIONER_REF],
                "description": "Weekly CBT",
            }
        },
        {"reference": {"reference": "ServiceRequest/sr-1"}},
        {
            "detail": {
                "status": "not-started",
                "doNotPerform": False,
                "scheduledString": "in 4 weeks",
                "dailyAmount": {"value": Decimal("0.5"), "unit": "h"},
            }
        },
    ],
}

GOAL: dict[str, Any] = {
    "resourceType": "Goal",
    "id": "goal-1",
    "lifecycleStatus": "active",
    "achievementStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": "in-progress"}]
    },
    "description": {"text": "PHQ-9 below 10 within 12 weeks"},
    "subject": PATIENT_REF,
    "startDate": "2024-03-05",
    "target": [
        {
            "measure": {"coding": [{"system": LOINC, "code": "44261-6"}]},
            "detailRange": {"high": {"value": 9, "unit": "{score}", "system": UCUM, "code": "{score}"}},
            "dueDate": "2024-05-28",
        }
    ],
    "expressedBy": PRACTITIONER_REF,
    "addresses": [{"reference": "Condition/cond-1"}],
}

SERVICE_REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "id": "sr-1",
    "status": "active",
    "intent": "order",
    "category": [{"coding": [{"system": SNOMED, "code": "409063005", "display": "Counseling"}]}],
    "priority": "routine",
    "code": {"coding": [{"system": SNOMED, "code": "304891004"}], "text": "CBT referral"},
    "subject": PATIENT_REF,
    "encounter": {"reference": "Encounter/enc-1"},
    "occurrencePeriod": {"start": "2024-03-12", "end": "2024-06-04"},
    "authoredOn": "2024-03-05T10:20:00-05:00",
    "requester": PRACTITIONER_REF,
    "performer": [{"reference": "Organization/org-bh"}],
    "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1"}]}],
    "reasonReference": [{"reference": "Condition/cond-1"}],
    "note": [{"text": "Patient prefers telehealth."}],
}

TASK: dict[str, Any] = {
    "resourceType": "Task",
    "id": "task-1",
    "basedOn": [{"reference": "ServiceRequest/sr-1"}],
    "status": "requested",
    "intent": "order",
    "priority": "routine",
    "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
    "focus": {"reference": "ServiceRequest/sr-1"},
    "for": PATIENT_REF,
    "authoredOn": "2024-03-05T10:21:00-05:00",
    "lastModified": "2024-03-05T10:21:00-05:00",
    "requester": PRACTITIONER_REF,
    "owner": {"reference": "Organization/org-bh"},
    "restriction": {"repetitions": 1, "period": {"end": "2024-03-19"}},
    "input": [
        {"type": {"text": "urgency"}, "valueString": "routine"},
        {"type": {"text": "sessions"}, "valuePositiveInt": 12},
    ],
}

CONSENT: dict[str, Any] = {
    "resourceType": "Consent",
    "id": "consent-1",
    "status": "active",
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
    "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
    "patient": PATIENT_REF,
    "dateTime": "2024-03-05T10:30:00-05:00",
    "organization": [{"reference": "Organization/org-bh"}],
    "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
    "provision": {
        "type": "permit",
        "period": {"start": "2024-03-05", "end": "2025-03-05"},
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": {"reference": "Organization/org-pcp"},
            }
        ],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
        "provision": [
            {
                "type": "deny",
                "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "SUD"}],
                "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}],
                "provision": [
                    {
                        "type": "permit",
                        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT"}],
                    }
                ],
            }
        ],
    },
}

PROVENANCE: dict[str, Any] = {
    "resourceType": "Provenance",
    "id": "prov-1",
    "target": [{"reference": "Observation/phq9-total-1"}, {"reference": "QuestionnaireResponse/qr-phq9-1"}],
    "occurredDateTime": "2024-03-05T09:30:00-05:00",
    "recorded": "2024-03-05T14:31:12.123Z",
    "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]},
    "agent": [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "code": "author",
                    }
                ]
            },
            "who": PRACTITIONER_REF,
            "onBehalfOf": {"reference": "Organization/org-bh"},
        }
    ],
    "entity": [{"role": "source", "what": {"display": "Clinic EHR export"}}],
}

DOCUMENT_REFERENCE: dict[str, Any] = {
    "resourceType": "DocumentReference",
    "id": "doc-1",
    "status": "current",
    "docStatus": "final",
    "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
    "category": [
        {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                    "code": "clinical-note",
                }
            ]
        }
    ],
    "subject": PATIENT_REF,
    "date": "2024-03-05T11:00:00.250-05:00",
    "author": [PRACTITIONER_REF],
    "securityLabel": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    ],
    "content": [
        {
            "attachment": {
                "contentType": "text/plain",
                "language": "en-US",
                "data": "U3ludGhldGljIG5vdGUu",
                "size": 15,
                "title": "Intake note",
                "creation": "2024-03-05T11:00:00-05:00",
            },
            "format": {
                "system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
            },
        }
    ],
    "context": {
        "encounter": [{"reference": "Encounter/enc-1"}],
        "period": {"start": "2024-03-05T09:00:00-05:00"},
    },
}

FLAG: dict[str, Any] = {
    "resourceType": "Flag",
    "id": "flag-1",
    "status": "active",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "safety"}]}],
    "code": {"text": "Elevated suicide risk: follow safety plan"},
    "subject": PATIENT_REF,
    "period": {"start": "2024-03-05T10:00:00-05:00"},
    "author": PRACTITIONER_REF,
}

MEDICATION_REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "medrx-1",
    "contained": [
        {
            "resourceType": "Medication",
            "id": "med1",
            "code": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "312938",
                        "display": "sertraline 50 MG Oral Tablet",
                    }
                ]
            },
            "form": {"text": "tablet"},
        }
    ],
    "status": "active",
    "intent": "order",
    "medicationReference": {"reference": "#med1"},
    "subject": PATIENT_REF,
    "authoredOn": "2024-03-05",
    "requester": PRACTITIONER_REF,
    "reasonReference": [{"reference": "Condition/cond-1"}],
    "dosageInstruction": [
        {
            "sequence": 1,
            "text": "50 mg by mouth once daily in the morning",
            "timing": {
                "repeat": {
                    "boundsPeriod": {"start": "2024-03-06"},
                    "frequency": 1,
                    "period": Decimal("1"),
                    "periodUnit": "d",
                    "timeOfDay": ["08:00:00"],
                },
                "code": {"text": "QAM"},
            },
            "asNeededBoolean": False,
            "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]},
            "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg", "system": UCUM, "code": "mg"}}],
        }
    ],
    "dispenseRequest": {
        "numberOfRepeatsAllowed": 2,
        "quantity": {"value": Decimal("30"), "unit": "tablet"},
        "expectedSupplyDuration": {"value": Decimal("30.0"), "unit": "days", "system": UCUM, "code": "d"},
    },
    "substitution": {"allowedBoolean": True},
}

ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "enc-1",
    "status": "finished",
    "class": {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "AMB",
        "display": "ambulatory",
    },
    "type": [{"coding": [{"system": SNOMED, "code": "90526000", "display": "Initial evaluation"}]}],
    "subject": PATIENT_REF,
    "participant": [
        {
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "PPRF",
                        }
                    ]
                }
            ],
            "individual": PRACTITIONER_REF,
        }
    ],
    "period": {"start": "2024-03-05T09:00:00-05:00", "end": "2024-03-05T10:30:00-05:00"},
    "length": {"value": 90, "unit": "min", "system": UCUM, "code": "min"},
    "reasonReference": [{"reference": "Condition/cond-1"}],
    "serviceProvider": {"reference": "Organization/org-bh"},
}

RESOURCES: list[dict[str, Any]] = [
    OBSERVATION,
    QUESTIONNAIRE_RESPONSE,
    PATIENT,
    CONDITION,
    CARE_PLAN,
    GOAL,
    SERVICE_REQUEST,
    TASK,
    CONSENT,
    PROVENANCE,
    DOCUMENT_REFERENCE,
    FLAG,
    MEDICATION_REQUEST,
    ENCOUNTER,
]

BUNDLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "id": "bundle-1",
    "type": "transaction",
    "timestamp": "2024-03-05T14:35:00Z",
    "entry": [
        {
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            "resource": resource,
            "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
        }
        for i, resource in enumerate([PATIENT, OBSERVATION, CARE_PLAN, CONSENT, MEDICATION_REQUEST])
    ],
}

ALL: list[dict[str, Any]] = [*RESOURCES, BUNDLE]
