"""Read clinic record files (JSON or XML) into validated records, one problem per bad record.

A file holds one record, a list of records, or `{"records": [...]}` (XML: `<records>` of record elements).
Records are validated one by one, so a bad record never hides the good ones next to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from adapter.bulk import collector_paused
from adapter.errors import AdapterError, Problem
from adapter.records import RECORD_ADAPTER, RECORD_KINDS, Record
from adapter.records.checks import CHECKED_KINDS
from adapter.records.checks import record_problems as semantic_problems

SUFFIXES = (".json", ".xml")
_RECORD_LIST: TypeAdapter[list[Record]] = TypeAdapter(list[Record])


@dataclass(frozen=True, slots=True)
class SourcedRecord:
    record: Record
    source: str  # file the record came from


@dataclass(slots=True)
class LoadResult:
    records: list[SourcedRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        self.records += other.records
        self.problems += other.problems


def record_problems(exc: ValidationError, *, source: str, record_id: str | None) -> list[Problem]:
    """One Problem per field, without pydantic's union-tag noise in the path."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in _KIND_TAGS:
            loc = loc[1:]
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(Problem(message, location=source, record_id=record_id, field=".".join(loc) or None))
    return problems


_KIND_TAGS = frozenset(RECORD_KINDS)


def validate_items(items: list[Any], *, source: str, decimals: bool = True) -> LoadResult:
    """Validate JSON-shaped record objects (strictly: no "1" for 1, timezones required).

    The whole list is validated in one call first (the common case: nothing wrong); only when that fails is each
    record validated on its own, so every bad record gets its own problem and the good ones are kept.
    """
    try:
        records = _RECORD_LIST.validate_json(_dumps(items), strict=True)
    except (ValidationError, AdapterError, TypeError, orjson.JSONEncodeError):
        return _validate_one_by_one(items, source=source)
    result = LoadResult()
    for index, record in enumerate(records):
        if decimals:  # the input may hold Decimals (JSON numbers as written): restore them on the records
            record = exact_numbers(record, items[index])
        _accept(result, record, source=source, label=_label(items[index], index))
    return result


def _json_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # the number as written: 2.50 stays 2.50
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_number)


def exact_numbers(record: Any, item: Any) -> Any:
    """`record` with its decimals as the input wrote them.

    pydantic reads a JSON number through a float, so a dose written 2.50 would become 2.5, and a FHIR decimal's
    precision is significant. parse_json reads numbers as Decimal: where the model holds a Decimal, the written
    one is put back (models are rebuilt, never edited). Records read without Decimals are returned as they are.
    """
    if not isinstance(item, dict) or not isinstance(record, BaseModel):
        return record
    updates: dict[str, Any] = {}
    for name, value in record.__dict__.items():
        written = item.get(name)
        if isinstance(value, Decimal) and isinstance(written, Decimal):
            if str(value) != str(written):
                updates[name] = written
        elif isinstance(value, BaseModel) and isinstance(written, dict):
            fixed = exact_numbers(value, written)
            if fixed is not value:
                updates[name] = fixed
        elif isinstance(value, tuple) and isinstance(written, list) and len(value) == len(written):
            parts = tuple(exact_numbers(v, w) for v, w in zip(value, written, strict=True))
            if any(a is not b for a, b in zip(parts, value, strict=True)):
                updates[name] = parts
    return record.model_copy(update=updates) if updates else record


def _label(item: Any, index: int) -> str:
    record_id = item.get("id") if isinstance(item, dict) else None
    return str(record_id) if isinstance(record_id, str) else f"#{index + 1}"


def _accept(result: LoadResult, record: Record, *, source: str, label: str) -> None:
    if not isinstance(record, CHECKED_KINDS):
        result.records.append(SourcedRecord(record, source))
        return
    problems = [Problem(p.message, location=source, record_id=label, field=p.field) for p in semantic_problems(record)]
    if problems:
        result.problems += problems
    else:
        result.records.append(SourcedRecord(record, source))


_SURROGATE = "a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not a character"


def _not_encodable(exc: orjson.JSONEncodeError) -> str:
    """Why a parsed record cannot be handed to validation, from orjson's message (its only distinction)."""
    reason = str(exc)
    if "surrogates" in reason:  # JSON "\ud800" escapes decode to lone surrogates, which are no text
        return _SURROGATE
    if "Recursion" in reason:
        return "objects and lists are nested too deeply (a record is a few levels deep)"
    if "Integer" in reason:  # parse_json keeps long integers as Decimals; this is a second line
        return "an integer is too large"
    return f"the record cannot be read: {reason}"


def _validate_one_by_one(items: list[Any], *, source: str) -> LoadResult:
    result = LoadResult()
    for index, item in enumerate(items):
        label = _label(item, index)
        if not isinstance(item, dict):
            result.problems.append(Problem("a record must be an object", location=source, record_id=label))
            continue
        if "kind" not in item:
            result.problems.append(Problem("missing record kind", location=source, record_id=label, field="kind"))
            continue
        try:
            data = _dumps(item)
        except orjson.JSONEncodeError as exc:
            result.problems.append(Problem(_not_encodable(exc), location=source, record_id=label))
            continue
        try:
            record = exact_numbers(RECORD_ADAPTER.validate_json(data, strict=True), item)
        except ValidationError as exc:
            result.problems += record_problems(exc, source=source, record_id=label)
        except AdapterError as exc:
            result.problems += [Problem(line, location=source, record_id=label) for line in exc.lines()]
        else:
            _accept(result, record, source=source, label=label)
    return result


class WrapperError(ValueError):
    """A `{"records": [...]}` wrapper that holds something else too: the file's records are not all readable."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _items_of(document: Any) -> list[Any]:
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and "records" in document and "kind" not in document:
        records = document["records"]
        if not isinstance(records, list):
            raise WrapperError('"records" must be a list', "records")
        other = sorted(key for key in document if key != "records")
        if other:
            # Unknown fields are errors, here as in a record: records under another key would be dropped unseen.
            raise WrapperError(
                f'unknown field {other[0]!r}: a wrapper object holds only "records" (a list of records)', other[0]
            )
        return records
    return [document]


# Integers longer than this are kept as Decimals, as written (a decimal field such as dose_value may be a long
# whole number); an int field still refuses them by its bounds. 18 digits always fit 64 bits.
_LONG_INTEGER = 18


def _not_json(constant: str) -> Any:
    # Python's parser accepts NaN and Infinity; JSON (and FHIR) has no such numbers.
    raise ValueError(f"{constant} is not a JSON number")


class DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        # A repeated key would silently keep only its last value (e.g. one of two answers to an item).
        raise DuplicateKeyError(f"duplicate key {duplicate!r} in one object")
    return obj


def parse_json(data: bytes, *, source: str) -> LoadResult:
    with collector_paused():  # adapter/bulk.py: thousands of acyclic records
        try:
            # The standard parser with a pairs hook: as fast as orjson here, and it sees duplicate keys.
            # parse_float: numbers with a fraction or exponent stay exactly as written (see exact_numbers).
            decimals: list[Decimal] = []

            def exact(text: str) -> Decimal:
                decimals.append(Decimal(text))
                return decimals[-1]

            def integer(text: str) -> int | Decimal:
                # Python's int() refuses more than 4300 digits and orjson more than 64 bits; a Decimal takes both.
                return int(text) if len(text.lstrip("-")) <= _LONG_INTEGER else exact(text)

            items = _items_of(
                json.loads(
                    data,
                    object_pairs_hook=_unique_keys,
                    parse_float=exact,
                    parse_int=integer,
                    parse_constant=_not_json,
                )
            )
        except WrapperError as exc:
            return LoadResult(problems=[Problem(str(exc), location=source, field=exc.field)])
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return LoadResult(problems=[Problem(f"not valid JSON: {exc}", location=source)])
        return validate_items(items, source=source, decimals=bool(decimals))


def parse_xml(data: bytes, *, source: str) -> LoadResult:
    from adapter.records.xml_input import xml_to_items

    try:
        items = xml_to_items(data, source=source)
    except AdapterError as exc:
        problems = exc.problems or [Problem(str(exc))]
        return LoadResult(
            problems=[
                Problem(p.message, location=p.location or source, record_id=p.record_id, field=p.field)
                for p in problems
            ]
        )
    return validate_items(items, source=source)


def parse_bytes(data: bytes, *, source: str, xml: bool) -> LoadResult:
    return parse_xml(data, source=source) if xml else parse_json(data, source=source)


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Record files under the given paths, in a stable order; explicit files are taken whatever their suffix."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        else:
            yield path


def load_paths(paths: Sequence[Path]) -> LoadResult:
    result = LoadResult()
    for file in iter_files(paths):
        try:
            data = file.read_bytes()
        except OSError as exc:
            result.problems.append(Problem(f"cannot read: {exc.strerror or exc}", location=str(file)))
            continue
        result.extend(parse_bytes(data, source=str(file), xml=file.suffix.lower() == ".xml"))
    return result
