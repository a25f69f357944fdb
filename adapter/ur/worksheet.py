"""The level-of-care worksheet (pure): the adapter's own Questionnaire (data/ur.yaml) and a QuestionnaireResponse
whose every answer is computed from what the consent release point released. Not a licensed instrument.

An item without evidence is left out (unanswered), never answered 0. Goal progress compares a Goal's measurable
target (LOINC total score, comparator, value) with the latest released score of that measure.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from adapter.fhir import Resource, deterministic_id
from adapter.mappings.context import fhir_instant
from adapter.ur.catalog import UrRequest, catalog
from adapter.ur.select import effective

GOAL_ACHIEVEMENT = "http://terminology.hl7.org/CodeSystem/goal-achievement"


def _equal(a: Decimal, b: Decimal) -> bool:
    return a == b


_COMPARE: Mapping[str, Callable[[Decimal, Decimal], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": _equal,  # no comparator: the target is the value itself
}


@dataclass
class Evidence:
    """The released resources a worksheet answer may use, indexed; `used` collects the keys an answer relied on."""

    patient: str
    conditions: list[Resource] = field(default_factory=list)
    scores: dict[str, list[tuple[datetime, Resource]]] = field(default_factory=dict)  # LOINC -> by date
    plans: list[Resource] = field(default_factory=list)
    goals: list[Resource] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, patient: str, released: Sequence[Resource]) -> Evidence:
        evidence = cls(patient)
        for resource in released:
            rtype = resource["resourceType"]
            if rtype == "Condition":
                evidence.conditions.append(resource)
            elif rtype == "Observation" and (when := effective(resource)) is not None:
                code = next((c["code"] for c in resource["code"].get("coding") or () if "code" in c), None)
                if code:
                    evidence.scores.setdefault(str(code), []).append((when, resource))
            elif rtype == "CarePlan":
                evidence.plans.append(resource)
            elif rtype == "Goal":
                evidence.goals.append(resource)
        for series in evidence.scores.values():
            series.sort(key=lambda item: (item[0], item[1]["id"]))
        return evidence

    def use(self, resource: Resource) -> None:
        self.used.add(f"{resource['resourceType']}/{resource['id']}")

    def series(self, code: str) -> list[tuple[datetime, Resource]]:
        return self.scores.get(code, [])


def _score(resource: Resource) -> Decimal | None:
    value = (resource.get("valueQuantity") or {}).get("value")
    return Decimal(str(value)) if value is not None else None


def _integer(value: Decimal | None) -> list[dict[str, Any]]:
    return [{"valueInteger": int(value)}] if value is not None and value == value.to_integral_value() else []


def _latest_score(evidence: Evidence, code: str) -> list[dict[str, Any]]:
    series = evidence.series(code)
    if not series:
        return []
    evidence.use(series[-1][1])
    return _integer(_score(series[-1][1]))


def _score_change(evidence: Evidence, code: str) -> list[dict[str, Any]]:
    series = evidence.series(code)
    first, last = (_score(series[0][1]), _score(series[-1][1])) if len(series) > 1 else (None, None)
    if first is None or last is None:
        return []
    evidence.use(series[0][1])
    evidence.use(series[-1][1])
    return _integer(last - first)


def _latest_coding(evidence: Evidence, code: str) -> list[dict[str, Any]]:
    series = evidence.series(code)
    codings = (series[-1][1].get("valueCodeableConcept") or {}).get("coding") if series else None
    if not codings:
        return []
    evidence.use(series[-1][1])
    return [{"valueCoding": dict(codings[0])}]


def _diagnoses(evidence: Evidence) -> list[dict[str, Any]]:
    answers = []
    for condition in evidence.conditions:
        codings = condition["code"].get("coding") or ()
        if codings:
            evidence.use(condition)
            answers.append({"valueCoding": dict(codings[0])})
    return answers


def goal_status(goal: Resource, evidence: Evidence) -> str | None:
    """goal-achievement code for a Goal with a measurable target, from the released scores of its measure."""
    target = (goal.get("target") or [{}])[0]
    code = next((c.get("code") for c in (target.get("measure") or {}).get("coding") or ()), None)
    quantity = target.get("detailQuantity") or {}
    series = evidence.series(str(code)) if code else []
    if not series or quantity.get("value") is None:
        return None
    compare = _COMPARE.get(str(quantity.get("comparator", "=")), _equal)
    latest, first = _score(series[-1][1]), _score(series[0][1])
    if latest is None or first is None:
        return None
    evidence.use(series[-1][1])
    if compare(latest, Decimal(str(quantity["value"]))):
        return "achieved"
    if len(series) == 1 or latest == first:
        return "in-progress" if len(series) == 1 else "no-change"
    lower_is_better = str(quantity.get("comparator", "")).startswith("<")
    return "improving" if (latest < first) == lower_is_better else "worsening"


def _goal_progress(evidence: Evidence) -> list[dict[str, Any]]:
    groups = []
    for goal in evidence.goals:
        items: list[dict[str, Any]] = [
            {"linkId": "goal", "answer": [{"valueReference": {"reference": f"Goal/{goal['id']}"}}]}
        ]
        status = goal_status(goal, evidence)
        if status is not None:
            items.append(
                {"linkId": "goal-status", "answer": [{"valueCoding": {"system": GOAL_ACHIEVEMENT, "code": status}}]}
            )
        evidence.use(goal)
        groups.append({"linkId": "goal-progress", "item": items})
    return groups


def questionnaire() -> Resource:
    """The worksheet's definition, built from data/ur.yaml (it travels in the package for the reviewer)."""
    spec = catalog().worksheet

    def item(node: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"linkId": node["linkId"], "text": node["text"], "type": node.get("type", "group")}
        if node.get("repeats"):
            out["repeats"] = True
        if node.get("items"):
            out["item"] = [item(child) for child in node["items"]]
        return out

    return {
        "resourceType": "Questionnaire",
        "id": deterministic_id("Questionnaire", spec["url"], spec["version"]),
        "url": spec["url"],
        "version": spec["version"],
        "name": "UrLevelOfCareWorksheet",
        "title": spec["title"],
        "status": "active",
        "subjectType": ["Patient"],
        "description": spec["description"],
        "item": [item(group) for group in spec["groups"]],
    }


def worksheet_response(
    evidence: Evidence, request: UrRequest, *, resource_id: str, author: str | None
) -> tuple[Resource, set[str]]:
    """The worksheet answered from `evidence`, and the keys of the resources its answers used."""
    spec = catalog().worksheet
    level = request.level

    def answers(derive: str) -> list[dict[str, Any]]:
        kind, _, code = derive.partition(":")
        if kind == "level-of-care":
            return [{"valueCoding": {"system": catalog().level_system, "code": level.code, "display": level.display}}]
        if kind == "latest-score":
            return _latest_score(evidence, code)
        if kind == "score-change":
            return _score_change(evidence, code)
        if kind == "latest-coding":
            return _latest_coding(evidence, code)
        if kind == "diagnoses":
            return _diagnoses(evidence)
        if kind == "plan-active":
            for plan in evidence.plans:
                evidence.use(plan)
            return [{"valueBoolean": bool(evidence.plans)}]
        if kind == "goals-total":
            return [{"valueInteger": len(evidence.goals)}] if evidence.plans else []
        if kind == "goals-achieved":
            measurable = [goal_status(g, evidence) for g in evidence.goals]
            known = [s for s in measurable if s is not None]
            return [{"valueInteger": known.count("achieved")}] if known else []
        raise ValueError(f"data/ur.yaml: unknown worksheet derivation {derive!r}")

    groups = []
    for group in spec["groups"]:
        if group.get("reviews") == "sud" and level.kind != "sud":
            continue
        items: list[dict[str, Any]] = []
        for node in group["items"]:
            if node["derive"] == "goal-progress":
                items += _goal_progress(evidence)
            elif found := answers(node["derive"]):
                items.append({"linkId": node["linkId"], "answer": found})
        if items:
            groups.append({"linkId": group["linkId"], "item": items})

    response: Resource = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id,
        "questionnaire": f"{spec['url']}|{spec['version']}",
        "status": "completed",
        "subject": {"reference": evidence.patient},
        "authored": fhir_instant(request.instant),
    }
    if author:
        response["author"] = {"reference": author}
    if groups:
        response["item"] = groups
    return response, set(evidence.used)
