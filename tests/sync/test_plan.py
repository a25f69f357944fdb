"""Pure helpers of the push (adapter/sync/plan.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.fhir import dumps
from adapter.sync.plan import body_references, references

_PIECES = st.sampled_from(['"', "\\", ",", "{", "}", ":", "/", "a", "é", "\n", '"reference":"', ',"reference":"'])
_TEXT = st.lists(_PIECES, max_size=6).map("".join)
_KEYS = st.sampled_from(["reference", "display", "a", "item", "extension", 'x"reference'])
_JSON: Any = st.recursive(
    _TEXT | st.integers(-(2**53), 2**53) | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300)
@given(st.dictionaries(_KEYS, _JSON, max_size=5))
def test_body_references_finds_what_the_walk_finds(resource: dict[str, Any]) -> None:
    """Reading references from the serialized bytes gives the walk's strings: none missed (a missed reference
    could put a resource before its target), none invented from text inside a value."""
    assert sorted(body_references(dumps(resource))) == sorted(references(resource))
