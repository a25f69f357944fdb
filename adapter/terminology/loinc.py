"""LOINC code shapes: the mod-10 check digit of LOINC codes, and the form of answer (LA) and list (LL) codes.

The LOINC Users' Guide (appendix "Calculating Mod 10 check digits") defines the check digit as the Luhn
scheme over the code number: double every other digit from the right, starting with the rightmost, sum the
digits of the results together with the untouched digits, and take the distance to the next multiple of ten.
LA/LL identifiers carry a suffix too, but it is not a Luhn digit of their number (LA6568-5, LA33-6), so for
them only the form is checked.
"""

from __future__ import annotations

import re

from adapter.errors import TerminologyError

_LOINC = re.compile(r"^(?P<number>[0-9]{1,7})-(?P<check>[0-9])$")
_ANSWER = re.compile(r"^LA[0-9]{1,6}-[0-9]$")
_ANSWER_LIST = re.compile(r"^LL[0-9]{1,6}-[0-9]$")


def check_digit(number: str) -> int:
    """The mod-10 check digit of a LOINC code number ("44261" -> 6)."""
    if not number.isascii() or not number.isdigit():
        raise TerminologyError("a LOINC code number is made of digits only")
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 0:  # rightmost digit and every second one to its left are doubled
            digit *= 2
            digit = digit // 10 + digit % 10
        total += digit
    return (10 - total % 10) % 10


def is_loinc(code: str) -> bool:
    """True if `code` is a well-formed LOINC code whose check digit matches ("44261-6")."""
    match = _LOINC.match(code)
    if match is None:
        return False
    return check_digit(match["number"]) == int(match["check"])


def is_answer_code(code: str) -> bool:
    """True for a well-formed LOINC answer code (LA6568-5)."""
    return bool(_ANSWER.match(code))


def is_answer_list(code: str) -> bool:
    """True for a well-formed LOINC answer list id (LL358-3)."""
    return bool(_ANSWER_LIST.match(code))
