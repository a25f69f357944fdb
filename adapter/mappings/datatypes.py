"""Record datatypes -> FHIR datatypes (names, identifiers, contact points, addresses, periods)."""

from __future__ import annotations

from typing import Any

from adapter import fhir
from adapter.mappings.context import fhir_date
from adapter.records.common import Address, ContactPoint, DatePeriod, HumanName, Identifier
from adapter.terminology import systems

_IDENTIFIER_TYPE_DISPLAY = {
    "MR": "Medical record number",
    "NPI": "National provider identifier",
    "MB": "Member Number",
    "SN": "Subscriber Number",
    "DL": "Driver's license number",
    "PPN": "Passport number",
    "PI": "Patient internal identifier",
    "TAX": "Tax ID number",
    "XX": "Organization identifier",
}


def drop_empty(obj: dict[str, Any]) -> dict[str, Any]:
    """FHIR forbids empty elements: leave out None, empty strings, lists and objects."""
    # Truthy values (nearly all) pass on the first test; 0 and False are kept, as FHIR values.
    return {k: v for k, v in obj.items() if v or not (v is None or v == "" or v == [] or v == {})}


# v2-0203 identifier types as CodeableConcepts, built once and shared (mapped values are never edited in place).
_IDENTIFIER_TYPE = {
    code: fhir.concept(systems.V2_0203, code, display) for code, display in _IDENTIFIER_TYPE_DISPLAY.items()
}


def identifier(ident: Identifier) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ident.type:
        out["type"] = _IDENTIFIER_TYPE[ident.type]
    out["system"] = ident.system
    out["value"] = ident.value
    return out


def npi_identifier(npi: str) -> dict[str, Any]:
    return {"system": systems.NPI, "value": npi}


def human_name(name: HumanName) -> dict[str, Any]:
    return drop_empty(
        {
            "use": name.use,
            "family": name.family,
            "given": list(name.given),
            "prefix": list(name.prefix),
            "suffix": list(name.suffix),
        }
    )


def name_text(name: HumanName) -> str:
    return " ".join([*name.prefix, *name.given, *([name.family] if name.family else []), *name.suffix])


def contact_point(cp: ContactPoint) -> dict[str, Any]:
    return drop_empty({"system": cp.system, "value": cp.value, "use": cp.use})


def address(addr: Address) -> dict[str, Any]:
    return drop_empty(
        {
            "use": addr.use,
            "line": list(addr.line),
            "city": addr.city,
            "state": addr.state,
            "postalCode": addr.postal_code,
            "country": addr.country,
        }
    )


def date_period(period: DatePeriod) -> dict[str, Any]:
    return drop_empty(
        {
            "start": fhir_date(period.start) if period.start else None,
            "end": fhir_date(period.end) if period.end else None,
        }
    )


def meta(profile: str | None) -> dict[str, Any]:
    return {"profile": [profile]} if profile else {}
