"""The engine's data: value sets, vocabulary hierarchies and rule ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapter.consent.valuesets import value_sets
from adapter.consent.vocab import load_yaml, rules, vocabulary

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
PACKAGE = Path(__file__).resolve().parents[2] / "adapter" / "consent"


@pytest.mark.parametrize(
    ("system", "code", "labels"),
    [
        (ICD, "F11.20", {"SUD", "OPIOIDUD"}),
        (ICD, "F1120", {"SUD", "OPIOIDUD"}),  # undotted, as claims write it
        (ICD, "f11.20", {"SUD", "OPIOIDUD"}),
        (ICD, "F10.20", {"SUD", "ETHUD"}),
        (ICD, "F12.20", {"SUD"}),
        (ICD, "F19.10", {"SUD"}),
        (ICD, "F17.210", set()),  # nicotine: Part 2's SUD excludes tobacco
        (ICD, "F172", set()),
        (ICD, "F33.1", {"MH", "PSY"}),
        (ICD, "F331", {"MH", "PSY"}),
        (ICD, "F32.A", {"MH", "PSY"}),
        (ICD, "Z91.51", {"MH"}),
        (ICD, "B20", {"HIV"}),
        (ICD, "T74.21XA", {"SDV"}),
        (ICD, "F11X", {"SUD", "OPIOIDUD"}),  # malformed: still judged by its prefix (fail closed)
        (SCT, "75544000", {"SUD", "OPIOIDUD"}),
        (SCT, "66590003", {"SUD", "ETHUD"}),
        (SCT, "18512000", {"MH"}),
        (LOINC, "82666-9", {"SUD"}),  # DAST-10 panel
        (LOINC, "82667-7", {"SUD"}),  # DAST-10 total
        (LOINC, "75626-2", {"SUD", "ETHUD"}),  # AUDIT-C total
        (LOINC, "68518-0", {"SUD", "ETHUD"}),  # AUDIT item 1, also AUDIT-C item 1
        (LOINC, "44260-8", {"MH"}),  # PHQ-9 item 9
        (LOINC, "44261-6", {"MH"}),  # PHQ-9 total
        (CPT, "90834", {"MH"}),
        (CPT, "99213", set()),
        (ICD, "J45.909", set()),
        ("urn:oid:2.16.840.1.113883.6.90", "F11.20", {"SUD", "OPIOIDUD"}),  # OID spelling of ICD-10-CM
    ],
)
def test_value_set_matches(system: str, code: str, labels: set[str]) -> None:
    entry = value_sets().match(vocabulary().canonical_system(system), code)
    assert set(entry.labels if entry else ()) == labels


def test_no_drug_codes_in_the_value_sets() -> None:
    """MOUD is judged by the prescribing program, never by RxNorm code."""
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert not [k for k in value_sets().exact if k[0] == rxnorm]


def test_questionnaire_canonical() -> None:
    entry = value_sets().match_questionnaire("http://loinc.org/q/82666-9")
    assert entry is not None and set(entry.labels) == {"SUD"}
    assert value_sets().match_questionnaire("http://example.org/q/1") is None


def test_every_entry_has_a_source() -> None:
    raw = load_yaml("sensitivity.yaml")
    for entry in [*raw["entries"], *raw["instruments"]]:
        assert entry.get("source"), entry
    assert all(e.source for e in value_sets().entries)


@pytest.mark.parametrize(
    ("granted", "requested", "permit", "covered"),
    [
        ("TREAT", "TREAT", True, True),
        ("TREAT", "ETREAT", True, True),
        ("TREAT", "BTG", True, True),
        ("HPAYMT", "COVAUTH", True, True),
        ("HOPERAT", "HLEGAL", True, False),  # never by subsumption for a permit
        ("HOPERAT", "HLEGAL", False, True),  # a deny covers it (fail closed)
        ("HLEGAL", "HLEGAL", True, True),
        ("TREAT", "HPAYMT", True, False),
        ("ETREAT", "TREAT", True, False),
    ],
)
def test_purpose_hierarchy(granted: str, requested: str, permit: bool, covered: bool) -> None:
    assert vocabulary().purpose_covers(granted, requested, permit=permit) is covered


def test_tpo() -> None:
    vocab = vocabulary()
    assert vocab.is_tpo("TREAT") and vocab.is_tpo("COVAUTH") and vocab.is_tpo("CAREMGT")
    assert not vocab.is_tpo("HLEGAL") and not vocab.is_tpo("HRESCH") and not vocab.is_tpo("PATRQT")


@pytest.mark.parametrize(
    ("granted", "labels", "permit", "covered"),
    [
        ("SUD", {"OPIOIDUD", "SUD"}, True, True),
        ("SUD", {"ETHUD"}, True, True),
        ("ETH", {"SUD"}, True, True),  # ETH is read as SUD
        ("OPIOIDUD", {"SUD"}, True, False),
        ("BH", {"MH"}, True, False),  # THO: MH is not under BH
        ("BH", {"MH"}, False, True),  # a deny on BH is read broadly
        ("R", {"N"}, True, True),  # permit up to restricted covers normal data
        ("N", {"R"}, True, False),
        ("R", {"V"}, False, True),  # deny restricted covers very restricted
        ("42CFRPart2", {"42CFRPart2", "SUD"}, True, True),
    ],
)
def test_label_coverage(granted: str, labels: set[str], permit: bool, covered: bool) -> None:
    assert vocabulary().label_covers(granted, frozenset(labels), permit=permit) is covered


def test_every_rule_id_in_the_code_is_documented() -> None:
    used: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        used |= set(re.findall(r'"((?:LBL|CNS|DEC|PT2|HIPAA|RED|NOTES|PATIENT)-[A-Z0-9-]+)"', path.read_text()))
    assert used, "no rule ids found"
    assert used <= set(rules()), sorted(used - set(rules()))
