"""A fixed probe set (shared/reference/performance.md §2, G3, widened): every probe is rejected.

Each probe is one mistake in an otherwise valid PHQ-9 total Observation (or another sample where the mistake
needs one). The compiled validator must reject all of them; the comment says what fhir.resources does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from adapter.schema.validator import errors

from .samples import care_plan, consent, patient, phq9_total, questionnaire_response

Resource = dict[str, Any]
_DROP = object()


def _obs(**changes: Any) -> Callable[[], Resource]:
    def build() -> Resource:
        resource = phq9_total()
        for key, value in changes.items():
            if value is _DROP:
                del resource[key]
            else:
                resource[key] = value
        return resource

    return build


def _edit(build: Callable[[], Resource], edit: Callable[[Resource], None]) -> Callable[[], Resource]:
    def probe() -> Resource:
        resource = copy.deepcopy(build())
        edit(resource)
        return resource

    return probe


PROBES: dict[str, tuple[Callable[[], Resource], str | None]] = {
    # --- the 12 probes of performance.md (fhir.resources rejects the first 9) ---
    "missing status": (_obs(status=_DROP), "status"),
    "missing code": (_obs(code=_DROP), "code"),
    "unknown element": (_obs(severity="high"), "severity"),
    "bad dateTime": (_obs(effectiveDateTime="2024-13-05T09:30:00-05:00"), "effectiveDateTime"),
    "naive instant": (_obs(issued="2024-03-05T14:31:12"), "issued"),
    "bad id": (_obs(id="phq9 total/1"), "id"),
    "two value[x]": (_obs(valueString="14"), "value[x]"),
    "empty string": (_edit(phq9_total, lambda r: r["code"].update(text="")), "code.text"),
    "wrong resourceType": (_obs(resourceType="Patient"), None),
    "bad status code (fhir.resources accepts)": (_obs(status="bogus"), "status"),
    "non-URI system (fhir.resources accepts)": (
        _edit(phq9_total, lambda r: r["code"]["coding"][0].update(system="LOINC codes")),
        "code.coding[0].system",
    ),
    "disallowed subject target (fhir.resources accepts in R4B)": (
        _obs(subject={"reference": "Medication/m1"}),
        "subject.reference",
    ),
    # --- wider: what the brief lists as mutation classes ---
    "instant without seconds": (_obs(issued="2024-03-05T14:31Z"), "issued"),
    "month 13 date": (_edit(patient, lambda r: r.update(birthDate="1990-13-01")), "birthDate"),
    "Feb 29 of a non-leap year": (_obs(effectiveDateTime="2023-02-29"), "effectiveDateTime"),
    "empty list": (_obs(performer=[]), "performer"),
    "empty object": (_obs(subject={}), "subject"),
    "null": (_obs(subject=None), "subject"),
    "bool where int (fhir.resources accepts)": (
        _edit(questionnaire_response, lambda r: r["item"][1]["item"][0]["answer"][0].update(valueInteger=True)),
        "item[1].item[0].answer[0].valueInteger",
    ),
    "str where decimal (fhir.resources accepts)": (
        _edit(phq9_total, lambda r: r["valueQuantity"].update(value="14")),
        "valueQuantity.value",
    ),
    "NaN decimal": (
        _edit(phq9_total, lambda r: r["valueQuantity"].update(value=Decimal("NaN"))),
        "valueQuantity.value",
    ),
    "integer out of range": (
        _edit(questionnaire_response, lambda r: r["item"][1]["item"][0]["answer"][0].update(valueInteger=2**31)),
        "item[1].item[0].answer[0].valueInteger",
    ),
    "R4B-only valueCodeableReference": (
        _obs(extension=[{"url": "http://example.org/x", "valueCodeableReference": {"concept": {"text": "x"}}}]),
        "extension[0].valueCodeableReference",
    ),
    "R4B-only valueRatioRange": (
        _obs(extension=[{"url": "http://example.org/x", "valueRatioRange": {"denominator": {"value": 1}}}]),
        "extension[0].valueRatioRange",
    ),
    "extension with neither value nor extensions": (_obs(extension=[{"url": "http://example.org/x"}]), "extension[0]"),
    "unknown contained resourceType": (_obs(contained=[{"resourceType": "Foo", "id": "f"}]), "contained[0]"),
    "contained without resourceType": (_obs(contained=[{"id": "f"}]), "contained[0]"),
    "bad code in required CodeableConcept binding": (
        _edit(care_plan, lambda r: r["activity"][0]["detail"].update(status="paused")),
        "activity[0].detail.status",
    ),
    "bad nested provision type": (
        _edit(consent, lambda r: r["provision"]["provision"][0].update(type="allow")),
        "provision.provision[0].type",
    ),
    "narrative that is not XHTML": (
        _edit(care_plan, lambda r: r["text"].update(div="<p>plan</p>")),
        "text.div",
    ),
    "narrative that does not parse": (
        _edit(care_plan, lambda r: r["text"].update(div='<div xmlns="http://www.w3.org/1999/xhtml"><p>x</div>')),
        "text.div",
    ),
    "hasMember to a Patient": (
        _edit(phq9_total, lambda r: r["hasMember"].append({"reference": "Patient/p1"})),
        "hasMember[9].reference",
    ),
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_is_rejected(name: str) -> None:
    build, field = PROBES[name]
    problems = errors(build())
    assert problems, f"{name}: accepted"
    if field is not None:
        assert any(p.field is not None and p.field.startswith(field) for p in problems), [p.field for p in problems]
