"""Compile FHIR R4 element definitions into pydantic-core schemas.

One definition per complex type, backbone element, Reference target set and bound CodeableConcept, linked by
definition references so recursion (Extension.extension, Identifier.assigner -> Reference.identifier,
QuestionnaireResponse.item.item, Consent.provision.provision) costs nothing extra. The definitions of all known
resource types (``resource_types.yaml``) are compiled together once, because any of them may be contained in
any other; each resource type then gets its own root so ``resourceType`` must equal the validator's type.

Everything runs in Rust except a few object-level checks that need to look at several keys at once: non-empty
objects, choice[x] groups, ext-1 on Extension, and required CodeableConcept bindings. Those are one small
Python after-validator per object type that has one (no walkers; each counts keys of the dict it is given).

Two tiers (why: pydantic-core pays for every declared field and every after-validator on every object, and
most of a mapping's output never uses `_name` siblings, element ids, datatype extensions or narrative markup
beyond p/ul/li):
- FULL compiles every R4 element. Its verdict and its errors are the validator's.
- FAST (profile below) leaves rarely emitted elements out and requires a few always-emitted ones, which also
  removes most non-empty checks. It only narrows FULL, so "FAST accepts" implies "FULL accepts"; anything FAST
  rejects is re-validated by FULL (CompiledValidator). tests/schema checks the implication by property test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from pydantic_core import SchemaValidator, ValidationError, core_schema

from adapter.fhir import R4_OBSERVATION_SUBJECT_TARGETS, R4B_ONLY_EXTENSION_VALUES
from adapter.schema.checks import concept_check, object_check
from adapter.schema.data import ConceptBinding, code_bindings, concept_bindings, resource_types
from adapter.schema.definitions import ANY_RESOURCE, Element, elements
from adapter.schema.primitives import code_in, primitive, reference_string, simple_xhtml

CoreSchema = core_schema.CoreSchema

# R4 (4.0.1) reference targets where they differ from the R4B model metadata.
_R4_TARGETS: dict[str, frozenset[str]] = {"Observation.subject": R4_OBSERVATION_SUBJECT_TARGETS}
# R4B-only elements to leave out, per model class: an R4 instance may not carry them.
_R4B_ONLY: dict[str, frozenset[str]] = {"Extension": R4B_ONLY_EXTENSION_VALUES}
# Element.id and Extension.url are attributes in FHIR (System.String), so they take no `_id` / `_url` sibling.
_NO_SIBLING = frozenset({"id", "url"})


@dataclass(frozen=True, slots=True)
class Profile:
    """A narrowing of the full schema to the shape mappings actually emit (see the "fast" tier in
    adapter.schema.validator). Everything it accepts, the full schema accepts: it only leaves elements out,
    makes elements required, and replaces the xhtml parse with a regex for a well-formed subset."""

    skip_in_datatypes: frozenset[str]  # left out of every datatype and backbone element
    skip_in_resources: frozenset[str]  # left out of every resource
    keep: dict[str, frozenset[str]]  # per model class: kept although skip_in_datatypes names them
    skip: dict[str, frozenset[str]]  # per model class
    require: dict[str, frozenset[str]]  # per model class: also makes the non-empty check unnecessary
    prefer: dict[str, frozenset[str]]  # per model class: tried first as required, then the checked variant
    primitive_siblings: bool  # whether `_name` extension siblings are allowed
    simple_xhtml: bool  # narrative by regex only (SIMPLE_XHTML) instead of a parse


FULL = Profile(frozenset(), frozenset(), {}, {}, {}, {}, primitive_siblings=True, simple_xhtml=False)
FAST = Profile(
    skip_in_datatypes=frozenset({"id", "extension", "modifierExtension"}),
    skip_in_resources=frozenset({"implicitRules", "modifierExtension"}),
    # DS4P security labels carry their basis as an extension on meta.security (adapter/consent/labeler.py):
    # every disclosed Bundle has them.
    keep={"Coding": frozenset({"extension"})},
    skip={"Reference": frozenset({"type"}), "Coding": frozenset({"version", "userSelected"})},
    require={
        "Coding": frozenset({"system", "code"}),
        "Quantity": frozenset({"value"}),
        "Period": frozenset({"start"}),
    },
    prefer={
        "Reference": frozenset({"reference"}),
        "CodeableConcept": frozenset({"coding"}),
        "Meta": frozenset({"profile"}),  # every US Core resource the adapter emits
        "Identifier": frozenset({"value"}),
        "HumanName": frozenset({"family"}),
    },
    primitive_siblings=False,
    simple_xhtml=True,
)


def _with_ref(schema: CoreSchema, ref: str) -> CoreSchema:
    return cast(CoreSchema, {**schema, "ref": ref})


def _list(item: CoreSchema) -> CoreSchema:
    return core_schema.list_schema(item, min_length=1, strict=True)  # FHIR forbids empty arrays


class Compiler:
    """Builds the shared definitions; ``used_bindings`` records which data-file bindings were applied."""

    def __init__(self, profile: Profile = FULL) -> None:
        self.profile = profile
        self.defs: dict[str, CoreSchema | None] = {}
        self.paths: dict[
            str, str
        ] = {}  # backbone model class -> FHIR path, e.g. "CarePlanActivity" -> "CarePlan.activity"
        self.used_bindings: set[str] = set()

    # --- definitions -------------------------------------------------------------------------------------
    def _define(self, name: str, build: Callable[[], CoreSchema]) -> CoreSchema:
        if name not in self.defs:
            self.defs[name] = None  # placeholder: a recursive reference back to `name` stops here
            self.defs[name] = _with_ref(build(), name)
        return core_schema.definition_reference_schema(name)

    def definitions(self) -> list[CoreSchema]:
        return [schema for schema in self.defs.values() if schema is not None]

    def resource(self, resource_type: str) -> CoreSchema:
        return self._define(f"resource:{resource_type}", lambda: self._object(resource_type, resource_type, True))

    def any_resource(self) -> CoreSchema:
        """contained / Bundle.entry.resource: dispatch on resourceType to one of the known resource types."""
        return self._define(
            "resource:*",
            lambda: core_schema.tagged_union_schema(
                {name: self.resource(name) for name in resource_types()},
                discriminator="resourceType",
                custom_error_type="fhir_resource_type",
                custom_error_message="resourceType must be one of the resource types this adapter knows",
            ),
        )

    # --- objects -----------------------------------------------------------------------------------------
    def _object(
        self,
        type_name: str,
        path: str,
        is_resource: bool = False,
        overrides: dict[str, CoreSchema] | None = None,
    ) -> CoreSchema:
        fields: dict[str, core_schema.TypedDictField] = {}
        if is_resource:
            fields["resourceType"] = core_schema.typed_dict_field(core_schema.literal_schema([type_name]))
        groups: dict[str, list[Element]] = {}
        profile = self.profile
        skip = _R4B_ONLY.get(type_name, frozenset()) | profile.skip.get(type_name, frozenset())
        skip |= (
            profile.skip_in_resources if is_resource else profile.skip_in_datatypes - profile.keep.get(type_name, set())
        )
        require = profile.require.get(type_name, frozenset())
        for element in elements(type_name):
            if element.name in skip:
                continue
            schema = (overrides or {}).get(element.name) or self._element(element, type_name, path)
            required = element.required or element.name in require
            fields[element.name] = core_schema.typed_dict_field(schema, required=required)
            if (
                profile.primitive_siblings
                and element.is_primitive
                and element.type != "xhtml"
                and element.name not in _NO_SIBLING
            ):
                fields["_" + element.name] = core_schema.typed_dict_field(
                    self._primitive_extension(element.is_list), required=False
                )
            if element.choice:
                groups.setdefault(element.choice, []).append(element)
        nonempty = not is_resource and not any(f.get("required") for f in fields.values())
        choice = tuple(
            (frozenset(e.name for e in members), any(e.choice_required for e in members), f"{group}[x]")
            for group, members in groups.items()
        )
        schema = core_schema.typed_dict_schema(fields, extra_behavior="forbid", strict=True)
        check = object_check(nonempty=nonempty, groups=choice, extension_rule=type_name == "Extension")
        if check:
            schema = core_schema.no_info_after_validator_function(check, schema)
        prefer = profile.prefer.get(type_name)
        if prefer and nonempty and not choice:
            # Try the usual shape first: with `prefer` required the object cannot be empty, so that variant needs
            # no Python check; objects without it fall through to the checked variant.
            usual = {
                k: core_schema.typed_dict_field(f["schema"], required=f.get("required", True) or k in prefer)
                for k, f in fields.items()
            }
            schema = core_schema.union_schema(
                [core_schema.typed_dict_schema(usual, extra_behavior="forbid", strict=True), schema],
                mode="left_to_right",
            )
        return schema

    def _primitive_extension(self, is_list: bool) -> CoreSchema:
        element = self.datatype("Element")
        if is_list:  # `_given` lines up with `given`: null where an item has no id/extension
            return _list(core_schema.nullable_schema(element))
        return element

    def _element(self, element: Element, owner: str, owner_path: str) -> CoreSchema:
        path = f"{owner_path}.{element.name}"
        item = self._item(element, owner, path)
        return _list(item) if element.is_list else item

    def _item(self, element: Element, owner: str, path: str) -> CoreSchema:
        if element.is_primitive:
            value_set = code_bindings().get(path)
            if value_set is None:
                if element.type == "xhtml" and self.profile.simple_xhtml:
                    return simple_xhtml()
                return primitive(element.type)
            if element.type != "code":
                raise ValueError(f"binding for {path}: a {element.type} element, not a code")
            self.used_bindings.add(path)
            return code_in(value_set.codes)
        if element.type == ANY_RESOURCE:
            return self.any_resource()
        if element.type == "Reference":
            targets = _R4_TARGETS.get(path) or frozenset(element.targets or ())
            return self._reference(targets)
        concept = concept_bindings().get(path)
        if concept is not None:
            if element.type != "CodeableConcept":
                raise ValueError(f"concept binding for {path}: a {element.type} element, not a CodeableConcept")
            self.used_bindings.add(path)
            return self._bound_concept(path, concept)
        return self._complex(element.type, owner, element.name, path)

    def _complex(self, type_name: str, owner: str, name: str, path: str) -> CoreSchema:
        if type_name == owner + name[:1].upper() + name[1:]:  # a backbone element: named by its FHIR path
            self.paths.setdefault(type_name, path)
        type_path = self.paths.get(type_name, type_name)
        return self._define(type_name, lambda: self._object(type_name, type_path))

    def datatype(self, type_name: str) -> CoreSchema:
        return self._define(type_name, lambda: self._object(type_name, type_name))

    def _reference(self, targets: frozenset[str]) -> CoreSchema:
        key = "|".join(sorted(targets)) if targets and ANY_RESOURCE not in targets else ANY_RESOURCE
        overrides = {"reference": reference_string(targets)}
        return self._define(f"Reference({key})", lambda: self._object("Reference", "Reference", overrides=overrides))

    def _bound_concept(self, path: str, binding: ConceptBinding) -> CoreSchema:
        base = self.datatype("CodeableConcept")
        return self._define(
            f"CodeableConcept@{path}",
            lambda: core_schema.no_info_after_validator_function(concept_check(path, binding), base),
        )


@cache
def compiled(fast: bool = False) -> Compiler:
    """All known resource types compiled once into shared definitions (per profile)."""
    compiler = Compiler(FAST if fast else FULL)
    for name in resource_types():
        compiler.resource(name)
    return compiler


def _root(resource_type: str, fast: bool) -> SchemaValidator:
    compiler = compiled(fast)
    return SchemaValidator(core_schema.definitions_schema(compiler.resource(resource_type), compiler.definitions()))


class CompiledValidator:
    """Two schemas for one resource type, used as one.

    The fast tier (profile FAST) decides resources of the usual shape; whatever it rejects goes to the full tier
    (profile FULL), whose verdict and errors stand. FAST only narrows FULL, so the result is always FULL's.
    """

    __slots__ = ("_fast", "_full", "resource_type")

    def __init__(self, resource_type: str) -> None:
        self.resource_type = resource_type
        self._fast = _root(resource_type, fast=True).validate_python
        self._full = _root(resource_type, fast=False).validate_python

    def validate_python(self, resource: dict[str, Any]) -> None:
        """Return None if valid; raise pydantic_core.ValidationError (the full tier's errors) if not."""
        try:
            self._fast(resource)
        except ValidationError:
            self._full(resource)

    __call__ = validate_python


@cache
def validator_for(resource_type: str) -> CompiledValidator:
    """The compiled validator for one resource type (its root accepts only that resourceType)."""
    if resource_type not in resource_types():
        raise KeyError(f"no compiled validator for resource type {resource_type!r}")
    return CompiledValidator(resource_type)


@cache
def datatype_validator(type_name: str) -> Callable[[Any], Any]:
    """One datatype's check ("Meta"), tiered like a resource's: the fast tier decides the usual shape, the full
    tier the rest. Raises pydantic_core.ValidationError (the full tier's) when invalid."""
    fast, full = (_datatype_root(type_name, tier) for tier in (True, False))

    def check(value: Any) -> None:
        try:
            fast(value)
        except ValidationError:
            full(value)

    return check


def _datatype_root(type_name: str, fast: bool) -> Callable[[Any], Any]:
    compiler = compiled(fast)
    root = compiler.datatype(type_name)  # defined already, or added to the shared definitions
    return SchemaValidator(core_schema.definitions_schema(root, compiler.definitions())).validate_python


class _FastChecks(dict[str, Callable[[Any], Any]]):
    """resourceType -> the fast tier's bare pydantic-core check, filled on first use; KeyError for an unknown
    type. For hot loops: it raises pydantic_core.ValidationError for anything the fast tier does not accept,
    which the caller re-validates with the full tier (validator.validate) to decide and locate the problems."""

    def __missing__(self, resource_type: str) -> Callable[[Any], Any]:
        check = self[resource_type] = validator_for(resource_type)._fast
        return check


FAST_CHECKS = _FastChecks()
