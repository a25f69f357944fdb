"""The policy data files: every entry sourced, used, and consistent with the R4B model metadata."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml

from adapter.schema.compile import compiled
from adapter.schema.data import code_bindings, concept_bindings, resource_types, value_sets
from adapter.schema.definitions import element_map, is_resource_type

R4_PAGE = re.compile(r"^https://hl7\.org/fhir/R4/valueset-[a-z0-9-]+\.html$")


def test_every_value_set_cites_its_r4_page() -> None:
    for name, value_set in value_sets().items():
        assert R4_PAGE.match(value_set.source), name
        assert value_set.source.endswith(f"valueset-{name}.html"), name


def test_codes_are_strings_in_the_yaml_itself() -> None:
    # YAML would turn an unquoted on/off/yes/no into a bool; the loader's str() would hide that.
    raw = yaml.safe_load(resources.files("adapter.schema").joinpath("required_bindings.yaml").read_text("utf-8"))
    for name, entry in raw["value_sets"].items():
        assert all(isinstance(code, str) for code in entry["codes"]), name
        assert len(set(entry["codes"])) == len(entry["codes"]), name


def test_every_value_set_is_bound_somewhere() -> None:
    used = {vs.name for vs in code_bindings().values()} | {b.value_set.name for b in concept_bindings().values()}
    assert used == set(value_sets())


def test_every_binding_is_applied_by_the_compiler() -> None:
    applied = compiled().used_bindings
    assert set(code_bindings()) | set(concept_bindings()) == applied


def _model_class(path: str) -> tuple[str, str]:
    """FHIR path -> (model class, element), e.g. CarePlan.activity.detail.status -> (CarePlanActivityDetail, status)."""
    *parts, element = path.split(".")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:]), element


@pytest.mark.parametrize("path", sorted(code_bindings()))
def test_model_enum_is_a_subset_of_the_complete_value_set(path: str) -> None:
    cls, name = _model_class(path)
    element = element_map(cls)[name]
    assert element.type == "code"
    listed = {code for code in element.enum or () if code != "+"}
    assert listed <= set(code_bindings()[path].codes), listed - set(code_bindings()[path].codes)


def test_resource_types_are_real_and_unique() -> None:
    names = resource_types()
    assert len(set(names)) == len(names)
    assert all(is_resource_type(name) for name in names)
