"""Code maps: cited, well formed, loaded once, unknown keys refused."""

from __future__ import annotations

import pytest

from adapter.errors import TerminologyError
from adapter.terminology import codes, systems


def all_concepts() -> list[codes.Concept]:
    return [*codes.interventions(), *codes.referral_targets(), *codes.note_types(), *codes.visit_types()]


def test_briefed_entries_exist() -> None:
    assert {
        "cbt",
        "dbt",
        "emdr",
        "motivational-interviewing",
        "medication-management",
        "group-therapy",
        "family-therapy",
        "individual-psychotherapy",
        "case-management",
        "peer-support",
    } <= {c.key for c in codes.interventions()}
    assert {
        "psychiatry",
        "primary-care",
        "sud-treatment",
        "inpatient-psychiatric",
        "community-resource",
        "social-services",
    } <= {c.key for c in codes.referral_targets()}
    assert {"progress-note", "psychotherapy-note", "sud-counseling-note"} <= {c.key for c in codes.note_types()}
    assert {
        "intake",
        "individual-therapy",
        "group-therapy",
        "family-therapy",
        "medication-management",
        "crisis",
    } <= {c.key for c in codes.visit_types()}
    assert {"AMB", "VR", "EMER"} <= {c.key for c in codes.encounter_classes()}


def test_every_coding_is_cited_and_every_empty_entry_says_why() -> None:
    for concept in all_concepts():
        performer = concept.performer if isinstance(concept, codes.ReferralTarget) else ()
        for coding in (*concept.codings, *performer):
            assert coding.source.strip(), concept.key
        if not concept.codings:
            assert concept.note, f"{concept.key}: text-only entry without a note"
    for cls in codes.encounter_classes():
        assert cls.source.strip()


def test_pinned_codes() -> None:
    psychiatry = codes.referral_target("psychiatry")
    assert [(c.system, c.code) for c in psychiatry.codings] == [(systems.SNOMED, "183524004")]
    assert codes.note_type("progress-note").codings[0].code == "11506-3"
    assert codes.encounter_class("VR").system == systems.V3_ACT_CODE
    assert codes.visit_type("intake").codings[0].system == systems.CPT


def test_fhir_concepts() -> None:
    assert codes.intervention("motivational-interviewing").fhir_concept() == {"text": "Motivational interviewing"}
    assert codes.intervention("dbt").fhir_concept() == {
        "text": "Dialectical behavior therapy",
        "coding": [
            {
                "system": systems.SNOMED,
                "code": "405780009",
                "display": "Dialectical behavior therapy (regime/therapy)",
            }
        ],
    }


def test_visit_types_point_at_known_classes() -> None:
    known = {c.key for c in codes.encounter_classes()}
    assert all(v.encounter_class in known for v in codes.visit_types())


def test_loaded_once() -> None:
    assert codes.interventions() is codes.interventions()


@pytest.mark.parametrize(
    "lookup",
    [codes.intervention, codes.referral_target, codes.note_type, codes.visit_type, codes.encounter_class],
)
def test_unknown_keys_are_refused(lookup: object) -> None:
    with pytest.raises(TerminologyError, match="'nope'"):
        lookup("nope")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("system", "code"),
    [("snomed", "304891005"), ("loinc", "11506-4"), ("cpt", "9079"), ("v3-ActCode", "amb"), ("icd9", "1")],
)
def test_malformed_codings_are_refused(system: str, code: str) -> None:
    with pytest.raises(ValueError, match="code"):
        codes.CitedCoding.model_validate({"system": system, "code": code, "display": "x", "source": "test"})
