"""SNOMED CT identifier shape: Verhoeff check digit and the partition that says "this is a concept".

SNOMED CT Technical Implementation Guide, "SCTID": 6 to 18 digits; the last digit is a Verhoeff check digit;
the two digits before it are the partition identifier, "00" for a concept in the international release and
"10" for a concept in an extension (long form, e.g. the US extension's 461481000124109).
"""

from __future__ import annotations

import re

_SCTID = re.compile(r"^[1-9][0-9]{5,17}$")
_CONCEPT_PARTITIONS = frozenset({"00", "10"})

# Verhoeff dihedral-group multiplication and permutation tables.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(digits: str) -> bool:
    """True if the last digit of `digits` is the Verhoeff check digit of the rest."""
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D[check][_P[position % 8][int(char)]]
    return check == 0


def is_concept_id(code: str) -> bool:
    """True for a well-formed SNOMED CT concept id (right length, concept partition, Verhoeff digit)."""
    return bool(_SCTID.match(code)) and code[-3:-1] in _CONCEPT_PARTITIONS and verhoeff_valid(code)
