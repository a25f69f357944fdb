"""ICD-10-CM code normalisation: FHIR carries the dotted form ("F33.10"), claims data the undotted ("F3310").

A code is 3 to 7 characters: a letter, a digit, then a digit or letter for the category (C4A, M1A, Z3A are
real), then up to four more letters or digits after the dot (F32.A, T36.0X1A). Three-character categories
take no dot ("F20", not "F20."; HL7/fhir-mCODE-ig #73/#74). Digits-only normalisers break codes like F32.A,
so letters are kept wherever they may stand.
Errors never repeat the code: it is part of a patient's record.
"""

from __future__ import annotations

import re

from adapter.errors import TerminologyError

_UNDOTTED = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")


def normalize_icd10cm(code: str) -> str:
    """The dotted ICD-10-CM form: "f3310" -> "F33.10", "F32A" -> "F32.A", "F20." -> "F20"."""
    text = code.strip().upper() if isinstance(code, str) else ""
    if text.count(".") > 1 or ("." in text and text.index(".") != 3):
        raise TerminologyError("malformed ICD-10-CM code: the dot goes after the third character")
    bare = text.replace(".", "")
    if not _UNDOTTED.match(bare):
        raise TerminologyError(
            "malformed ICD-10-CM code: expected a letter, a digit, a digit or letter, then up to 4 more"
        )
    return bare if len(bare) == 3 else f"{bare[:3]}.{bare[3:]}"


def undotted(code: str) -> str:
    """The undotted form used by X12 and claims files: "F33.10" -> "F3310"."""
    return normalize_icd10cm(code).replace(".", "")
