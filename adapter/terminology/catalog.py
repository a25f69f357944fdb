"""The instrument catalog: the YAML files under ``instruments/``, loaded once and validated.

Read through importlib.resources so the catalog works from an installed wheel as well as from the source tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from adapter.errors import Problem, TerminologyError
from adapter.terminology.models import Instrument

_PACKAGE = "adapter.terminology"
_FOLDER = "instruments"


def instrument(key_or_alias: str) -> Instrument:
    """The instrument with this key or alias ("phq-9", "PHQ9", "PHQ 9" all name the PHQ-9)."""
    catalog = _catalog()
    found = catalog.index.get(key_or_alias)  # the common case: the key itself, as the catalog spells it
    if found is None:
        found = catalog.index.get(_normal(key_or_alias))
    if found is None:
        known = ", ".join(i.key for i in _catalog().instruments)
        raise TerminologyError(f"unknown instrument {key_or_alias!r} (known: {known})")
    return found


def instruments() -> tuple[Instrument, ...]:
    """Every instrument in the catalog, ordered by key."""
    return _catalog().instruments


@dataclass(frozen=True)
class _Catalog:
    instruments: tuple[Instrument, ...]
    index: dict[str, Instrument]


def _normal(name: str) -> str:
    # Case, spaces, hyphens and underscores vary between forms and EHR exports; the letters and digits do not.
    return re.sub(r"[^0-9a-z]", "", name.casefold())


@cache
def _catalog() -> _Catalog:
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    entries = sorted((e for e in folder.iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name)
    loaded = tuple(_load(e.name, e.read_text(encoding="utf-8")) for e in entries)
    index: dict[str, Instrument] = {}
    for inst in loaded:
        for name in (inst.key, *inst.aliases):
            owner = index.setdefault(_normal(name), inst)
            if owner is not inst:
                raise TerminologyError(f"instrument name {name!r} is used by both {owner.key} and {inst.key}")
    for inst in loaded:
        index.setdefault(inst.key, inst)  # found without normalizing; a key normalizes to its own entry
    return _Catalog(tuple(sorted(loaded, key=lambda i: i.key)), index)


def _load(filename: str, text: str) -> Instrument:
    location = f"{_PACKAGE}/{_FOLDER}/{filename}"
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise TerminologyError(f"{location}: not a mapping", [Problem("not a mapping", location=location)])
    try:
        return Instrument.model_validate(_resolve_answer_lists(raw, location))
    except ValidationError as exc:
        problems = [
            Problem(err["msg"], location=location, field=".".join(map(str, err["loc"])) or None) for err in exc.errors()
        ]
        raise TerminologyError(f"{location}: invalid instrument definition", problems) from exc


def _resolve_answer_lists(raw: dict[str, Any], location: str) -> dict[str, Any]:
    """Replace each item's answer-list name with the list defined under `answer_lists` in the same file."""
    lists = raw.get("answer_lists") or {}
    items = []
    for item in raw.get("items") or []:
        name = item.get("answers") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in lists:
            key = item.get("key") if isinstance(item, dict) else None
            raise TerminologyError(f"{location}: item {key}: unknown answer list {name!r}")
        items.append({**item, "answers": lists[name]})
    return {**{k: v for k, v in raw.items() if k != "answer_lists"}, "items": items}
