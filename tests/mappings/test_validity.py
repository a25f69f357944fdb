"""Every emitted resource is valid FHIR R4: fhir.resources (the reference) and the fast validator agree it is,
every reference resolves inside the client's Bundle, and JSON -> XML -> JSON is lossless."""

from __future__ import annotations

from collections import Counter
from typing import Any

from adapter import fhir
from adapter.fhirxml.reader import from_xml
from adapter.fhirxml.writer import to_xml
from adapter.pipeline import MappedChart
from adapter.schema import validator


def _references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node["reference"])
        for value in node.values():
            found += _references(value)
    elif isinstance(node, list):
        for item in node:
            found += _references(item)
    return found


def test_every_resource_passes_fhir_resources_and_the_fast_validator(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        fhir.reference_validate(chart.bundle)
        validator.validate(chart.bundle)
        for resource in chart.resources:
            fhir.reference_validate(resource)
            validator.validate(resource)


def test_every_reference_resolves_inside_the_bundle(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        present = {f"{r['resourceType']}/{r['id']}" for r in chart.resources}
        dangling = [ref for r in chart.resources for ref in _references(r) if ref not in present]
        assert dangling == [], f"{chart.client_id}: {dangling}"


def test_ids_are_unique_and_full_urls_present(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        keys = Counter((r["resourceType"], r["id"]) for r in chart.resources)
        assert [k for k, n in keys.items() if n > 1] == []
        assert all(
            e["fullUrl"].endswith(f"/{e['resource']['resourceType']}/{e['resource']['id']}")
            for e in chart.bundle["entry"]
        )


def test_json_xml_json_is_lossless(mapped: dict[str, MappedChart]) -> None:
    for chart in mapped.values():
        assert from_xml(to_xml(chart.bundle)) == fhir.loads(fhir.dumps(chart.bundle))


def test_fhir_resources_parses_our_xml_to_the_same_bundle(mapped: dict[str, MappedChart]) -> None:
    bundle_model = fhir.model_class("Bundle")
    for chart in list(mapped.values())[:3]:  # fhir.resources XML parsing is slow; three clients are enough
        from_ours = bundle_model.model_validate_xml(to_xml(chart.bundle))
        from_json = bundle_model.model_validate(chart.bundle)
        assert from_ours.model_dump() == from_json.model_dump()
