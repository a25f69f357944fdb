"""Object-level rules that need several keys of one object at once, as small after-validators.

They are the only Python on the validator's success path, so each is specialised at compile time and does a
constant amount of C-level work (a set intersection over the object's keys), never a walk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticCustomError

from adapter.schema.data import ConceptBinding

Check = Callable[[dict[str, Any]], dict[str, Any]]
Group = tuple[frozenset[str], bool, str]  # (member element names, one required?, label like "value[x]")


def _error(kind: str, message: str, element: str | None = None, **context: Any) -> PydanticCustomError:
    # "element" is appended to the error's path by adapter.schema.validator
    ctx = {"element": element, **context} if element else context or None
    return PydanticCustomError(kind, message, ctx)


def _nonempty(obj: dict[str, Any]) -> dict[str, Any]:
    if obj:
        return obj
    raise _error("fhir_empty", "an object must have at least one element (ele-1)")


def _conflict(present: frozenset[str] | set[str], label: str) -> PydanticCustomError:
    found = ", ".join(sorted(present))
    return _error("fhir_choice", "at most one of {element} may be present, found {found}", label, found=found)


def object_check(nonempty: bool, groups: tuple[Group, ...], extension_rule: bool) -> Check | None:
    """The after-validator for one object type, or None when the type has no object-level rule.

    nonempty: ele-1 for types without a required element; groups: choice[x] (at most one member, exactly one
    when required); extension_rule: ext-1 (an Extension has value[x] or nested extensions, not both, not neither).
    """
    if extension_rule:
        return _extension_check(groups)
    if not groups:
        return _nonempty if nonempty else None
    label_of = {member: label for members, _, label in groups for member in members}
    every_member = frozenset(label_of)
    required = tuple((members, label) for members, is_required, label in groups if is_required)

    def check(obj: dict[str, Any]) -> dict[str, Any]:
        if nonempty and not obj:
            raise _error("fhir_empty", "an object must have at least one element (ele-1)")
        present = every_member.intersection(obj)
        if len(present) > 1:
            seen: dict[str, str] = {}
            for member in present:
                label = label_of[member]
                if label in seen:
                    raise _conflict({member, seen[label]}, label)
                seen[label] = member
        for members, label in required:
            if members.isdisjoint(present):
                raise _error("fhir_choice", "one of {element} is required", label)
        return obj

    return check


def _extension_check(groups: tuple[Group, ...]) -> Check:
    values = next((members for members, _, label in groups if label == "value[x]"), frozenset())

    def check(obj: dict[str, Any]) -> dict[str, Any]:
        present = values.intersection(obj)
        if len(present) > 1:
            raise _conflict(present, "value[x]")
        if bool(present) == ("extension" in obj):
            raise _error(
                "fhir_extension", "an extension has value[x] or nested extensions, not both or neither (ext-1)"
            )
        return obj

    return check


def concept_check(path: str, binding: ConceptBinding) -> Check:
    """A required binding on a CodeableConcept: a coding from the bound system, using a code of the value set."""
    codes = frozenset(binding.value_set.codes)
    system = binding.system

    def check(concept: dict[str, Any]) -> dict[str, Any]:
        in_system = [coding for coding in concept.get("coding", ()) if coding.get("system") == system]
        if not in_system:
            raise _error(
                "fhir_binding", "{path} needs a coding from {system} (required binding)", path=path, system=system
            )
        if any(coding.get("code") not in codes for coding in in_system):
            raise _error(
                "fhir_binding",
                "{path} code is not in value set {value_set} (required binding)",
                path=path,
                value_set=binding.value_set.name,
            )
        return concept

    return check
