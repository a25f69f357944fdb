"""Walk the record models the way a reader of their annotations would, independently of the converter."""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import MinLen
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from adapter.records import RECORD_KINDS


@dataclass(frozen=True)
class Spec:
    value: Any  # the item annotation without Annotated / None
    meta: tuple[Any, ...]  # constraints on the item
    repeated: bool
    min_occurs: int


def unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    meta: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *more = get_args(annotation)
            meta += more
        elif origin in (Union, types.UnionType) and type(None) in get_args(annotation):
            (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
        else:
            return annotation, meta


def spec_of(info: FieldInfo) -> Spec:
    value, meta = unwrap(info.annotation)
    meta = list(info.metadata) + meta
    if get_origin(value) is tuple:
        count = next((m.min_length for m in meta if isinstance(m, MinLen)), 0)
        assert not (info.is_required() and count == 0), "a required empty list has no XML form"
        item, item_meta = unwrap(get_args(value)[0])
        return Spec(item, tuple(item_meta), True, count)
    return Spec(value, tuple(meta), False, 1 if info.is_required() else 0)


def scalar_kind(value: Any) -> str:
    if get_origin(value) is Literal:
        return "text"
    if value is AwareDatetime:
        return "instant"
    assert value is not datetime, "a naive datetime field: timezones are required"
    kinds = {bool: "boolean", int: "integer", Decimal: "decimal", date: "date", str: "text"}
    assert value in kinds, f"no XML form for {value!r}"
    return kinds[value]


def models() -> dict[str, type[BaseModel]]:
    """Every model reachable from the record kinds, by class name."""
    found: dict[str, type[BaseModel]] = {}

    def visit(model: type[BaseModel]) -> None:
        if model.__name__ in found:
            return
        found[model.__name__] = model
        for info in model.model_fields.values():
            value = spec_of(info).value
            if isinstance(value, type) and issubclass(value, BaseModel):
                visit(value)

    for model in RECORD_KINDS.values():
        assert issubclass(model, BaseModel)
        visit(model)
    return found


MODELS = models()
