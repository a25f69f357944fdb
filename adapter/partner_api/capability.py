"""``GET /fhir/metadata``: the CapabilityStatement, generated from the same table the server searches with."""

from __future__ import annotations

from datetime import datetime

from adapter import __version__
from adapter.fhir import FHIR_VERSION, Resource
from adapter.mappings.context import fhir_instant
from adapter.partner_api.query import DEFAULT_COUNT, MAX_COUNT, PAGE_PARAM
from adapter.partner_api.searchparams import PATIENT_PARAMS, RESOURCE_TYPES, SEARCH

_SECURITY = (
    "Every request needs `Authorization: Bearer <token>` (RFC 6750), a token the clinic issues to one partner "
    "for its purposes of use (`X-Purpose-Of-Use` picks one of them; never a query parameter). Every response is "
    "the consent-enforced view of that partner for that purpose at the time of the request (42 CFR Part 2, "
    "HIPAA): what is withheld is answered as not found."
)


def _resource(resource_type: str) -> Resource:
    params = SEARCH[resource_type]
    search_params = [
        {
            "name": "_id",
            "type": "token",
            "documentation": "logical id; a comma-separated list matches any",
        },
        *(
            {"name": name, "type": "reference", "documentation": p.doc or f"reference search on {', '.join(p.paths)}"}
            for name, p in sorted(params.items())
            if name in PATIENT_PARAMS
        ),
    ]
    entry: Resource = {
        "type": resource_type,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "searchInclude": [f"{resource_type}:{name}" for name in sorted(params)],
        "searchParam": search_params,
    }
    if not entry["searchInclude"]:
        del entry["searchInclude"]
    return entry


def capability_statement(base: str, instant: datetime) -> Resource:
    """The partner-facing API's CapabilityStatement (kind instance) at `base`."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir_instant(instant),
        "publisher": "bh-fhir-adapter",
        "kind": "instance",
        "software": {"name": "bh-fhir-adapter", "version": __version__},
        "implementation": {"description": "Partner-facing FHIR API of the behavioral-health adapter", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "xml", "application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read and search by patient (`patient`, `subject`, or `_id`; at least one) with `_include` and "
                    f"paging (`_count`, default {DEFAULT_COUNT}, at most {MAX_COUNT}; follow the `next` link, whose "
                    f"`{PAGE_PARAM}` token only works for the partner and purpose it was issued to). A search "
                    "parameter not listed here is refused (400). A searchset that holds 42 CFR Part 2 data carries "
                    "the 42 CFR 2.32 redisclosure notice as an include-mode DocumentReference."
                ),
                "security": {
                    "cors": False,
                    "service": [{"text": "Bearer token (RFC 6750)"}],
                    "description": _SECURITY,
                },
                "resource": [_resource(t) for t in RESOURCE_TYPES],
            }
        ],
    }
