"""Assessment -> US Core screening resources: QuestionnaireResponse (the form as answered), a panel Observation
whose members are one Observation per answered item and the total score, and a Flag per risk rule that fires.

Following US Core's screening pattern: the QuestionnaireResponse is the source of truth and every Observation
is `derivedFrom` it. A missing item means no total-score Observation at all (never a fabricated 0); the panel
says why in a note. A risk rule (PHQ-9 item 9 above 0, C-SSRS behavior or intent) fires on the items, whatever
the total, and becomes a Flag that a receiving clinician's system shows on the chart.
"""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.fhir import Resource
from adapter.mappings import profiles
from adapter.mappings.codes import score_quantity
from adapter.mappings.context import MappingContext, fhir_instant
from adapter.mappings.datatypes import drop_empty, meta
from adapter.records import Assessment
from adapter.records.checks import assessment_score
from adapter.terminology import systems
from adapter.terminology.models import Coding, RiskRule
from adapter.terminology.scoring import ResolvedAnswer, ScoreResult

_SURVEY = fhir.concept(systems.OBSERVATION_CATEGORY, "survey", "Survey")
# Shared by every screening Observation (mapped values are never edited in place).
_SURVEY_CATEGORY = [_SURVEY]
_SCREENING_PROFILES = [profiles.US_CORE_SCREENING]
_OBSERVATION_STATUS = {"completed": "final", "amended": "amended", "entered-in-error": "entered-in-error"}
_FLAG_PRIORITY = {"high": ("PH", "High priority"), "moderate": ("PM", "Medium priority"), "low": ("PL", "Low priority")}
_CLINICAL_FLAG = fhir.concept(profiles.FLAG_CATEGORY, "clinical", "Clinical")
LOINC_QUESTIONNAIRE_BASE = "http://loinc.org/q/"  # LOINC form canonicals as LHC-Forms publishes them


# Catalog codings as FHIR, built once per catalog object: the catalog lives as long as the process, and every
# administration of an instrument emits the same code and answer concepts. The dicts are shared between
# resources, so nothing may edit them (mappings build, consent redaction rebuilds; nothing edits in place).
_SHARED: dict[int, tuple[object, dict[str, Any]]] = {}


def _shared(coding: Coding, value: bool = False) -> dict[str, Any]:
    """`coding` as a CodeableConcept, or (value) as the valueCodeableConcept of an answer (coding only)."""
    key = id(coding) * 2 + value
    found = _SHARED.get(key)
    if found is None:
        fhir_coding = coding.fhir_coding()
        if value:
            concept = {"coding": [fhir_coding]} if fhir_coding else {"text": coding.display}
        else:
            concept = coding.fhir_concept()
        found = _SHARED[key] = (coding, concept)  # the coding is kept, so its id is never reused
    return found[1]


def _item_id(asm: Assessment, key: str, ctx: MappingContext) -> str:
    return ctx.id("Observation", asm.id, "item", key)


def _performer(asm: Assessment, ctx: MappingContext) -> list[dict[str, Any]]:
    if asm.administered_by:
        return [ctx.practitioner_ref(asm.administered_by)]
    return [ctx.ref("Patient", asm.client)]


class _Administration:
    """What every resource of one administration shares, computed once (this is the mapping's hot path)."""

    def __init__(self, asm: Assessment, ctx: MappingContext) -> None:
        self.patient = ctx.ref("Patient", asm.client)
        self.encounter = ctx.ref("Encounter", asm.visit) if asm.visit else None
        self.effective = fhir_instant(asm.administered_at)
        self.performer = _performer(asm, ctx)
        self.qr_id = ctx.id("QuestionnaireResponse", asm.id)
        self.derived = [fhir.reference("QuestionnaireResponse", self.qr_id)]
        self.status = _OBSERVATION_STATUS[asm.status]
        tail: dict[str, Any] = {"subject": self.patient}
        if self.encounter:
            tail["encounter"] = self.encounter
        tail["effectiveDateTime"] = self.effective
        tail["performer"] = self.performer
        self.tail = tail

    def observation(self, obs_id: str, code: dict[str, Any], **rest: Any) -> dict[str, Any]:
        """An Observation in element order: shared head, code, shared tail, then value etc., derivedFrom last."""
        return {
            "resourceType": "Observation",
            "id": obs_id,
            "meta": {"profile": _SCREENING_PROFILES},  # one meta per resource: `source` is stamped on it later
            "status": self.status,
            "category": _SURVEY_CATEGORY,
            "code": code,
            **self.tail,
            **rest,
            "derivedFrom": self.derived,
        }


def _answer_value(answer: ResolvedAnswer) -> dict[str, Any]:
    coding = answer.coding.fhir_coding()
    return {"valueCoding": coding} if coding else {"valueString": answer.coding.display}


_QR_ITEMS: dict[int, tuple[ResolvedAnswer, dict[str, Any]]] = {}


def _link_id(loinc_code: str) -> str:
    """The linkId of a LOINC item in the LOINC form Questionnaire (http://loinc.org/q/<panel>) as LHC-Forms builds
    it, and as US Core's PHQ-9 QuestionnaireResponse example uses it: "/44250-9"."""
    return f"/{loinc_code}"


def _qr_item(answer: ResolvedAnswer) -> dict[str, Any]:
    """The QuestionnaireResponse item of an answer: fixed by the catalog item and option, so built once (answers
    are memoized per item and option by the scorer; shared and never edited, like _shared's concepts)."""
    found = _QR_ITEMS.get(id(answer))
    if found is None:
        item = {
            "linkId": _link_id(answer.item.code) if answer.item.code else answer.item.key,
            "text": answer.item.text,
            "answer": [_answer_value(answer)],
        }
        found = _QR_ITEMS[id(answer)] = (answer, item)
    return found[1]


def questionnaire_response(
    asm: Assessment, result: ScoreResult, ctx: MappingContext, adm: _Administration | None = None
) -> Resource:
    adm = adm or _Administration(asm, ctx)
    inst = result.instrument
    items = [_qr_item(a) for a in result.answers]
    if result.total is not None and inst.total:
        total = {"valueInteger": result.total}
        items.append({"linkId": _link_id(inst.total.code), "text": inst.total.display, "answer": [total]})
    return drop_empty(
        {
            "resourceType": "QuestionnaireResponse",
            "id": adm.qr_id,
            "meta": meta(profiles.US_CORE_QUESTIONNAIRE_RESPONSE),
            "identifier": ctx.record_identifier("assessment", asm.id),
            "questionnaire": LOINC_QUESTIONNAIRE_BASE + inst.panel.code,
            "status": "entered-in-error" if asm.status == "entered-in-error" else asm.status,
            "subject": adm.patient,
            "encounter": adm.encounter,
            "authored": adm.effective,
            "author": adm.performer[0],
            "source": adm.patient if asm.self_reported else None,
            "item": items,
        }
    )


_SEVERITY_RANK = {"low": 0, "moderate": 1, "high": 2}


def risk_flag(asm: Assessment, rules: tuple[RiskRule, ...], details: list[str], ctx: MappingContext) -> Resource:
    """One Flag per administration: coded by the most severe rule that fired, naming every rule in its text,
    pointing (flag-detail) at the Observations that triggered it, with a priority a clinician cannot miss."""
    top = max(rules, key=lambda r: _SEVERITY_RANK[r.severity])  # first of the most severe, in catalog order
    priority_code, priority_display = _FLAG_PRIORITY[top.severity]
    extensions: list[dict[str, Any]] = [
        {"url": profiles.FLAG_DETAIL_EXTENSION, "valueReference": fhir.reference("Observation", d)} for d in details
    ]
    extensions.append(
        {
            "url": profiles.FLAG_PRIORITY_EXTENSION,
            "valueCodeableConcept": fhir.concept(profiles.FLAG_PRIORITY, priority_code, priority_display),
        }
    )
    code = top.coding.fhir_concept()
    code["text"] = "; ".join([top.display, *(r.display for r in rules if r is not top)])
    return drop_empty(
        {
            "resourceType": "Flag",
            "id": ctx.id("Flag", asm.id, "risk"),
            "extension": extensions,
            "identifier": [ctx.record_identifier("assessment-risk", asm.id)],
            "status": "entered-in-error" if asm.status == "entered-in-error" else "active",
            "category": [_CLINICAL_FLAG],
            "code": code,
            "subject": ctx.ref("Patient", asm.client),
            "period": {"start": fhir_instant(asm.administered_at)},
            "encounter": ctx.ref("Encounter", asm.visit) if asm.visit else None,
            "author": _performer(asm, ctx)[0] if asm.administered_by else ctx.clinic_ref(asm.program),
        }
    )


def to_fhir(asm: Assessment, ctx: MappingContext) -> list[Resource]:
    result = assessment_score(asm)
    inst = result.instrument
    adm = _Administration(asm, ctx)

    members: list[Resource] = []
    item_obs: dict[str, str] = {}
    for answer in result.answers:
        obs = adm.observation(
            _item_id(asm, answer.item.key, ctx),
            _shared(answer.item.coding),
            valueCodeableConcept=_shared(answer.coding, value=True),
        )
        members.append(obs)
        item_obs[answer.item.key] = obs["id"]

    total_id = None
    if result.total is not None and inst.total:
        extra: dict[str, Any] = {"valueQuantity": score_quantity(result.total, unit=inst.unit)}
        if result.band:
            extra["interpretation"] = [_shared(result.band.coding)]
        total = adm.observation(ctx.id("Observation", asm.id, "total"), _shared(inst.total.coding), **extra)
        members.append(total)
        total_id = total["id"]

    risk_id = None
    if result.risk_level and inst.risk_level:
        risk = adm.observation(
            ctx.id("Observation", asm.id, "risk-level"),
            _shared(inst.risk_level.coding),
            valueCodeableConcept=_shared(result.risk_level.coding),
        )
        members.append(risk)
        risk_id = risk["id"]

    panel_extra: dict[str, Any] = {}
    if result.missing and inst.total:
        panel_extra["note"] = [
            {"text": f"Incomplete: item(s) {', '.join(result.missing)} not answered, so no total score is reported."}
        ]
    if members:
        panel_extra["hasMember"] = [fhir.reference("Observation", m["id"]) for m in members]
    else:
        # us-core-2 / obs-6: a panel with neither value nor members must say why.
        panel_extra["dataAbsentReason"] = fhir.concept(systems.DATA_ABSENT_REASON, "asked-unknown", "Asked But Unknown")
    panel = adm.observation(ctx.id("Observation", asm.id, "panel"), _shared(inst.panel.coding), **panel_extra)

    flags = []
    if result.risk_rules:
        details: list[str] = []
        for rule in result.risk_rules:
            details += [item_obs[p.item] for p in rule.when if p.item and p.item in item_obs]
            if any(p.total for p in rule.when):
                # Without a total (an incomplete form whose answers already make the band certain), the evidence
                # is the answered items.
                details += [total_id] if total_id else list(item_obs.values())
        if risk_id:
            details.append(risk_id)
        flags.append(risk_flag(asm, result.risk_rules, list(dict.fromkeys(details)), ctx))

    return [questionnaire_response(asm, result, ctx, adm), panel, *members, *flags]
