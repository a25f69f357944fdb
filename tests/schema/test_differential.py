"""Differential tests: whatever fhir.resources (adapter.fhir.reference_validate) rejects, we reject too.

Each example takes a valid sample and applies one mutation of a class the brief lists. The property checked is
one-sided: reference rejects => compiled validator rejects. A second property checks the two tiers: whatever
the fast tier accepts, the full tier accepts (so the fast tier can never let through what the full one would not).

Where the compiled validator is STRICTER than fhir.resources (it rejects, fhir.resources accepts):

- codes outside a required binding (status, intent, priority, use, gender, ...; Condition clinical/verification
  status codings in their code system, and at least one such coding);
- uri/canonical/url with whitespace or empty; code with leading/trailing/double spaces (both reject the latter);
- Reference.reference to a type the element does not allow (fhir.resources checks only R4 Observation.subject);
- empty objects ({} anywhere), empty arrays, and JSON null as a value or inside an array;
- wrong JSON types that pydantic's lax mode coerces: bool or float or numeric string where an integer is
  expected, string where a decimal or boolean is expected, int where a boolean is expected, NaN/Infinity,
  tuples for arrays, Python date/datetime objects instead of FHIR date text;
- ids longer than 64 characters (fhir.resources allows 255) and primitives carried only by their `_name`
  extension sibling when the element is required (we require the value itself); `_id` / `_url` siblings;
- Extension without value[x] and nested extensions, or with both (ext-1);
- Narrative.div that is not an XHTML <div> or does not parse as XML (no DTD, no entities beyond XML's own);
- base64Binary with characters outside the alphabet (Python's decoder silently drops them);
- contained / Bundle.entry.resource of a resource type the adapter does not know (resource_types.yaml);
  fhir.resources raises KeyError for a non-FHIR type, which helpers.reference_rejects counts as a rejection.

Where we match fhir.resources although R4 would allow more: Extension.valueMeta (R4, dropped in R4B) and
version-4-only uuids (fhir.resources' UUID4 type) are rejected by both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import ValidationError

from adapter.schema.compile import _root
from adapter.schema.validator import errors

from .helpers import reference_rejects
from .samples import SAMPLES

Node = dict[str, Any] | list[Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]


def _nodes(node: Any, parent: Node | None = None, key: Any = None) -> Iterator[tuple[Node | None, Any, Any]]:
    """Every (parent, key, value) in the tree, the root included as (None, None, root)."""
    yield parent, key, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _nodes(v, node, k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nodes(v, node, i)


def _pick(draw: Draw, resource: dict[str, Any], accept: Callable[[Any, Any, Any], bool]) -> tuple[Any, Any] | None:
    candidates = [(p, k) for p, k, v in _nodes(resource) if p is not None and accept(p, k, v)]
    return draw(st.sampled_from(candidates)) if candidates else None


def _set(draw: Draw, resource: dict[str, Any], accept: Callable[[Any, Any, Any], bool], value: Any) -> None:
    picked = _pick(draw, resource, accept)
    if picked:
        parent, key = picked
        parent[key] = value


def _is_str(p: Any, k: Any, v: Any) -> bool:
    return isinstance(v, str) and k != "resourceType"


def _drop_element(draw: Draw, r: dict[str, Any]) -> None:
    picked = _pick(draw, r, lambda p, k, v: isinstance(p, dict) and k != "resourceType")
    if picked:
        del picked[0][picked[1]]


def _unknown_element(draw: Draw, r: dict[str, Any]) -> None:
    objects = [v for _, _, v in _nodes(r) if isinstance(v, dict)]
    draw(st.sampled_from(objects))[draw(st.sampled_from(["severity", "_status2", "Value", "extension_"]))] = "x"


def _wrong_primitive(draw: Draw, r: dict[str, Any]) -> None:
    leaf = lambda p, k, v: isinstance(v, str | int | float | Decimal) and k != "resourceType"  # noqa: E731
    _set(draw, r, leaf, draw(st.sampled_from([5, True, False, "5", 1.5, None, Decimal("2.5"), ["x"], {"a": 1}])))


def _bad_date(draw: Draw, r: dict[str, Any]) -> None:
    dated = lambda p, k, v: isinstance(v, str) and v[:4].isdigit() and "-" in v[4:5]  # noqa: E731
    bad = [
        "2024-13-01",
        "2024-02-30",
        "2023-02-29",
        "2024-03-05T10:00:00",
        "2024-03-05T10:00Z",
        "24-03-05",
        "2024-03-05T25:00:00Z",
        "2024-03-05 10:00:00Z",
        "2024-3-5",
        "2024-03-05T10:00:00+15:00",
    ]
    _set(draw, r, dated, draw(st.sampled_from(bad)))


def _bad_id(draw: Draw, r: dict[str, Any]) -> None:
    r["id"] = draw(st.sampled_from(["bad id", "a_b", "x" * 65, "x" * 300, "", "ü"]))


def _two_choices(draw: Draw, r: dict[str, Any]) -> None:
    prefixes = ("value", "effective", "onset", "medication", "scheduled", "occurrence", "deceased", "due", "detail")
    objects = [
        (v, k)
        for _, _, v in _nodes(r)
        if isinstance(v, dict)
        for k in v
        if k.startswith(prefixes)
        and k not in prefixes
        and k[len(next(p for p in prefixes if k.startswith(p)))].isupper()
    ]
    if objects:
        obj, key = draw(st.sampled_from(objects))
        prefix = next(p for p in prefixes if key.startswith(p))
        obj[prefix + draw(st.sampled_from(["String", "Boolean", "DateTime"]))] = draw(
            st.sampled_from(["x", True, "2024-01-01"])
        )


def _empty_string(draw: Draw, r: dict[str, Any]) -> None:
    _set(draw, r, _is_str, "")


def _empty_list(draw: Draw, r: dict[str, Any]) -> None:
    _set(draw, r, lambda p, k, v: isinstance(v, list), [])


def _empty_object(draw: Draw, r: dict[str, Any]) -> None:
    _set(draw, r, lambda p, k, v: isinstance(v, dict), {})


def _wrong_resource_type(draw: Draw, r: dict[str, Any]) -> None:
    r["resourceType"] = draw(st.sampled_from(["Patient", "Observation", "Basic", "Foo", "observation"]))


_CODED = frozenset({"status", "intent", "priority", "use", "gender", "kind", "type", "mode"})


def _bad_status(draw: Draw, r: dict[str, Any]) -> None:
    _set(draw, r, lambda p, k, v: k in _CODED and isinstance(v, str), draw(st.sampled_from(["bogus", "Final"])))


def _bad_system(draw: Draw, r: dict[str, Any]) -> None:
    _set(draw, r, lambda p, k, v: k == "system" and isinstance(v, str), draw(st.sampled_from(["LOINC codes", " "])))


def _bad_target(draw: Draw, r: dict[str, Any]) -> None:
    target = draw(st.sampled_from(["Medication/m1", "Basic/b1", "Observation/o1", "Patient/p1", "patient/p1"]))
    _set(draw, r, lambda p, k, v: k == "reference" and isinstance(v, str), target)


def _bool_for_int(draw: Draw, r: dict[str, Any]) -> None:
    _set(draw, r, lambda p, k, v: type(v) is int, draw(st.sampled_from([True, 1.0, "1"])))


def _str_for_decimal(draw: Draw, r: dict[str, Any]) -> None:
    _set(draw, r, lambda p, k, v: k == "value" and isinstance(v, int | Decimal), draw(st.sampled_from(["14", "1.5"])))


MUTATIONS = [
    _drop_element,
    _unknown_element,
    _wrong_primitive,
    _bad_date,
    _bad_id,
    _two_choices,
    _empty_string,
    _empty_list,
    _empty_object,
    _wrong_resource_type,
    _bad_status,
    _bad_system,
    _bad_target,
    _bool_for_int,
    _str_for_decimal,
]


def _fast_accepts_only_what_full_accepts(resource: dict[str, Any]) -> None:
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or rtype not in {s()["resourceType"] for s in SAMPLES.values()}:
        return
    try:
        _root(rtype, fast=True).validate_python(resource)
    except ValidationError:
        return
    _root(rtype, fast=False).validate_python(resource)  # raises if the fast tier was too lax


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_reference_rejects_implies_we_reject(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SAMPLES)), label="sample")
    mutate = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    resource = copy.deepcopy(SAMPLES[name]())
    mutate(data.draw, resource)
    ours = errors(resource)
    if reference_rejects(resource):
        assert ours, f"{name} / {mutate.__name__}: fhir.resources rejects, compiled validator accepts"
    _fast_accepts_only_what_full_accepts(resource)
