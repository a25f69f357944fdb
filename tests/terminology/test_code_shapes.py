"""LOINC mod-10 and SNOMED CT Verhoeff check digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.errors import TerminologyError
from adapter.terminology import loinc, snomed


@pytest.mark.parametrize("code", ["44261-6", "44249-1", "69689-8", "101698-9", "93374-7", "11506-3", "8302-2"])
def test_known_loinc_codes_pass(code: str) -> None:
    assert loinc.is_loinc(code)


@pytest.mark.parametrize("code", ["44261-5", "44261", "44261-66", "LA6568-5", "4426a-6", "", " 44261-6"])
def test_malformed_loinc_codes_fail(code: str) -> None:
    assert not loinc.is_loinc(code)


def test_check_digit_worked_example_from_the_loinc_users_guide() -> None:
    assert loinc.check_digit("12345") == 5


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(TerminologyError):
        loinc.check_digit("12a45")


@given(number=st.integers(min_value=1, max_value=9_999_999), position=st.integers(0, 6), delta=st.integers(1, 9))
def test_any_single_digit_typo_is_caught(number: int, position: int, delta: int) -> None:
    digits = str(number)
    code = f"{digits}-{loinc.check_digit(digits)}"
    assert loinc.is_loinc(code)
    i = position % len(digits)
    typo = digits[:i] + str((int(digits[i]) + delta) % 10) + digits[i + 1 :]
    assert not loinc.is_loinc(f"{typo}-{loinc.check_digit(digits)}")


@pytest.mark.parametrize("code", ["LA6568-5", "LA33-6", "LA9194-7"])
def test_answer_codes(code: str) -> None:
    assert loinc.is_answer_code(code)
    assert not loinc.is_answer_list(code)


@pytest.mark.parametrize("code", ["LL358-3", "LL5384-4"])
def test_answer_lists(code: str) -> None:
    assert loinc.is_answer_list(code)


@pytest.mark.parametrize("code", ["LA6568", "la6568-5", "LA-5", "LA1234567-1"])
def test_malformed_answer_codes(code: str) -> None:
    assert not loinc.is_answer_code(code)


@pytest.mark.parametrize(
    "code",
    ["22298006", "73211009", "38341003", "304891004", "183524004", "461481000124109", "428481000124106"],
)
def test_known_snomed_concepts_pass(code: str) -> None:
    assert snomed.is_concept_id(code)


@pytest.mark.parametrize(
    "code",
    [
        "428481000124109",  # a typo once made in this catalog: wrong check digit
        "304891005",
        "12345",  # too short
        "0304891004",  # leading zero
        "900000000000207008"[:-2] + "18",  # description partition, not a concept
    ],
)
def test_bad_snomed_ids_fail(code: str) -> None:
    assert not snomed.is_concept_id(code)
