"""ICD-10-CM normalisation: dotted form out, 3-character categories without a dot, malformed codes refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.errors import TerminologyError
from adapter.terminology.icd10 import normalize_icd10cm, undotted


@pytest.mark.parametrize(
    ("given_code", "dotted", "bare"),
    [
        ("F3310", "F33.10", "F3310"),
        ("F33.10", "F33.10", "F3310"),
        ("f33.10", "F33.10", "F3310"),
        ("F32.A", "F32.A", "F32A"),
        ("F32A", "F32.A", "F32A"),
        ("f32a", "F32.A", "F32A"),
        ("F17.210", "F17.210", "F17210"),
        ("F17210", "F17.210", "F17210"),
        ("F20", "F20", "F20"),
        ("F20.", "F20", "F20"),
        (" F41.1 ", "F41.1", "F411"),
        ("Z3A.20", "Z3A.20", "Z3A20"),
        ("M1A.0710", "M1A.0710", "M1A0710"),
        ("T36.0X1A", "T36.0X1A", "T360X1A"),
        ("U07.1", "U07.1", "U071"),
        ("F43.10", "F43.10", "F4310"),
    ],
)
def test_normalisation_table(given_code: str, dotted: str, bare: str) -> None:
    assert normalize_icd10cm(given_code) == dotted
    assert undotted(given_code) == bare
    assert normalize_icd10cm(dotted) == dotted  # idempotent


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "F",
        "F3",
        "3310",  # no letter
        "FF3.10",  # second character must be a digit
        "F3.310",  # dot in the wrong place
        "F33..10",
        "F33.1.0",
        "F33.10000",  # too long
        "F33-10",
        "F33 10",
        "F33.1é",
        ".F33",
    ],
)
def test_malformed_codes_are_refused_without_repeating_them(bad: str) -> None:
    with pytest.raises(TerminologyError) as caught:
        normalize_icd10cm(bad)
    assert not bad.strip() or bad.strip() not in str(caught.value)


@given(
    letter=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    digit=st.sampled_from("0123456789"),
    third=st.sampled_from("0123456789A"),
    rest=st.text(alphabet="0123456789ABXZ", max_size=4),
)
def test_round_trip_between_forms(letter: str, digit: str, third: str, rest: str) -> None:
    bare = f"{letter}{digit}{third}{rest}"
    dotted = normalize_icd10cm(bare)
    assert undotted(dotted) == bare
    assert normalize_icd10cm(dotted.lower()) == dotted
    assert ("." in dotted) == bool(rest)
