"""Sensitive-code value sets (``data/sensitivity.yaml``): which Coding gives which sensitivity label, and why.

Loaded once and checked (known systems and labels, SNOMED CT and LOINC check digits, unique ids); matching is a
dictionary lookup for exact codes, a longest-prefix walk for ICD-10-CM (dotted or undotted) and a numeric range
for CPT. Instruments are resolved through the instrument catalog, so their codes are spelled in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from adapter.consent.vocab import load_yaml, vocabulary
from adapter.errors import TerminologyError
from adapter.terminology import catalog, loinc, snomed
from adapter.terminology.icd10 import normalize_icd10cm

LOINC_QUESTIONNAIRE_PREFIX = "http://loinc.org/q/"


@dataclass(frozen=True)
class Entry:
    """One value-set entry: its id (the label basis detail), labels and source."""

    id: str
    labels: tuple[str, ...]
    source: str
    verified: bool = True
    rule: str = "LBL-CODE"


@dataclass(frozen=True)
class ValueSets:
    exact: dict[tuple[str, str], Entry]
    prefixes: dict[str, dict[str, Entry]]  # system -> undotted prefix -> entry
    ranges: dict[str, tuple[tuple[int, int, Entry], ...]]  # system -> (low, high, entry)
    code_prefixes: dict[str, tuple[tuple[str, Entry], ...]]  # system -> (code prefix, entry), adapter codes
    entries: tuple[Entry, ...] = field(repr=False)

    def match(self, system: str, code: str) -> Entry | None:
        """The entry a Coding matches (system already canonical), or None."""
        found = self.exact.get((system, code))
        if found is not None:
            return found
        by_prefix = self.prefixes.get(system)
        if by_prefix is not None:
            return _longest_prefix(by_prefix, _undotted(code))
        ranges = self.ranges.get(system)
        if ranges is not None and code.isdigit():
            number = int(code)
            return next((e for low, high, e in ranges if low <= number <= high), None)
        for prefix, entry in self.code_prefixes.get(system, ()):
            if code.startswith(prefix):
                return entry
        return None

    def match_questionnaire(self, canonical: str) -> Entry | None:
        """QuestionnaireResponse.questionnaire of a LOINC form: http://loinc.org/q/<panel code>."""
        if not canonical.startswith(LOINC_QUESTIONNAIRE_PREFIX):
            return None
        code = canonical[len(LOINC_QUESTIONNAIRE_PREFIX) :].split("|")[0]
        return self.exact.get((vocabulary().system_uri["loinc"], code))


def _undotted(code: str) -> str:
    try:
        return normalize_icd10cm(code).replace(".", "")
    except TerminologyError:
        # A malformed code still gets the benefit of the doubt of its prefix (fail closed: F11X stays SUD).
        return code.strip().upper().replace(".", "")


def _longest_prefix(by_prefix: dict[str, Entry], code: str) -> Entry | None:
    for length in range(len(code), 0, -1):
        found = by_prefix.get(code[:length])
        if found is not None:
            return found
    return None


def _check(entry_id: str, system: str, code: str) -> None:
    if system == vocabulary().system_uri["snomed"] and not snomed.is_concept_id(code):
        raise TerminologyError(f"consent value sets: {entry_id}: not a SNOMED CT concept id")
    if system == vocabulary().system_uri["loinc"] and not loinc.is_loinc(code):
        raise TerminologyError(f"consent value sets: {entry_id}: not a LOINC code")


def _entry(raw: dict[str, Any], rule: str = "LBL-CODE") -> Entry:
    vocab = vocabulary()
    labels = tuple(raw["labels"])
    unknown = [label for label in labels if not vocab.is_sensitivity(label)]
    if unknown:
        raise TerminologyError(f"consent value sets: {raw.get('id') or raw.get('key')}: unknown labels {unknown}")
    if not raw.get("source"):
        raise TerminologyError(f"consent value sets: {raw.get('id') or raw.get('key')}: no source")
    return Entry(
        id=str(raw.get("id") or f"instrument-{raw['key']}"),
        labels=labels,
        source=str(raw["source"]),
        verified=bool(raw.get("verified", True)),
        rule=rule,
    )


@cache
def value_sets() -> ValueSets:
    vocab = vocabulary()
    raw = load_yaml("sensitivity.yaml")
    exact: dict[tuple[str, str], Entry] = {}
    prefixes: dict[str, dict[str, Entry]] = {}
    ranges: dict[str, list[tuple[int, int, Entry]]] = {}
    code_prefixes: dict[str, list[tuple[str, Entry]]] = {}
    entries: list[Entry] = []
    for item in raw["entries"]:
        entry = _entry(item)
        entries.append(entry)
        system = vocab.system_uri[item["system"]]
        if "code" in item:
            _check(entry.id, system, str(item["code"]))
            exact[(system, str(item["code"]))] = entry
        elif "prefix" in item:
            prefixes.setdefault(system, {})[str(item["prefix"]).replace(".", "").upper()] = entry
        elif "range" in item:
            low, high = (int(x) for x in item["range"])
            ranges.setdefault(system, []).append((low, high, entry))
        else:
            code_prefixes.setdefault(system, []).append((str(item["code_prefix"]), entry))
    loinc_uri = vocab.system_uri["loinc"]
    for item in raw["instruments"]:
        entry = _entry(item, rule="LBL-INSTRUMENT")
        entries.append(entry)
        instrument = catalog.instrument(item["key"])
        terms = [instrument.panel.code, *(i.code for i in instrument.items if i.code)]
        terms += [t.code for t in (instrument.total, instrument.risk_level) if t is not None]
        for code in terms:
            previous = exact.get((loinc_uri, code))
            # AUDIT-C items are AUDIT items 1-3: same code, same labels, first source kept.
            if previous is None or set(previous.labels) != set(entry.labels):
                exact[(loinc_uri, code)] = _merge(previous, entry)
    ids = [e.id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise TerminologyError(f"consent value sets: duplicate ids {duplicates}")
    return ValueSets(
        exact=exact,
        prefixes=prefixes,
        ranges={s: tuple(v) for s, v in ranges.items()},
        code_prefixes={s: tuple(v) for s, v in code_prefixes.items()},
        entries=tuple(entries),
    )


def _merge(previous: Entry | None, entry: Entry) -> Entry:
    if previous is None:
        return entry
    labels = tuple(dict.fromkeys(previous.labels + entry.labels))
    return Entry(f"{previous.id}+{entry.id}", labels, f"{previous.source}; {entry.source}", False, entry.rule)
