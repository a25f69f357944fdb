"""Hypothesis strategies for the consent engine: requests, consents and Bundles built from the fixture clients.

Consents are the client's own, mutated (status, period) and joined by generated ones with random provision trees
(depth up to 3, random types, actors, purposes, labels); Bundles are the mapped charts with existing labels
sprinkled on some resources. Everything is built by shallow copies: the mapped resources are never modified.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from adapter.consent import DisclosureRequest, Emergency, HipaaRestriction, Identifier
from adapter.mappings.context import MappingContext
from adapter.mappings.profiles import RECIPIENT_CLASS_SYSTEM
from adapter.terminology.systems import NPI

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
IRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}

CLIENTS = ("cl-01", "cl-02", "cl-03", "cl-04", "cl-09", "cl-10", "cl-11", "cl-15", "cl-16")
RECIPIENTS = {  # directory id -> NPI (or payer id)
    "org-maple-fm": "1384772053",
    "org-cvrh": "1106944287",
    "org-northfield-psych": "1728035910",
}
PURPOSES = ("TREAT", "ETREAT", "HPAYMT", "COVAUTH", "HOPERAT", "HLEGAL", "HRESCH", "PATRQT", "CAREMGT")
LABELS = ("SUD", "ETH", "ETHUD", "OPIOIDUD", "MH", "PSY", "BH", "PSYTHPN", "HIV", "42CFRPart2")
EXISTING = (
    (ACT, "ETH"),
    (ACT, "PSY"),
    (CONF, "R"),
    (CONF, "N"),
    (ACT, "42CFRPart2"),
    ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "HRELIABLE"),
)
_START = datetime(2025, 1, 1, tzinfo=UTC)


def instants() -> st.SearchStrategy[datetime]:
    offsets = st.sampled_from([timezone(timedelta(hours=-5)), timezone(timedelta(hours=-4)), UTC])
    return st.builds(
        lambda minutes, tz: (_START + timedelta(minutes=minutes)).astimezone(tz),
        st.integers(min_value=0, max_value=2 * 366 * 24 * 60),
        offsets,
    )


@st.composite
def requests(draw: st.DrawFn) -> DisclosureRequest:
    org = draw(st.sampled_from([*RECIPIENTS, "org-granite-mutual"]))
    ident = (
        Identifier(system="https://granitemutual.example.org/fhir/sid/payer", value="GMHP-01")
        if org == "org-granite-mutual"
        else Identifier(system=NPI, value=RECIPIENTS[org])
    )
    emergency = draw(st.sampled_from([None, None, None, Emergency(description="overdose", declared_by="ED attending")]))
    restrict = draw(st.booleans())
    return DisclosureRequest(
        recipient_organizations=(ident,),
        recipient_name=org,
        purpose=draw(st.sampled_from(PURPOSES)),
        instant=draw(instants()),
        emergency=emergency,
        recipient_is_medical_personnel=draw(st.booleans()),
        treating_relationship=draw(st.booleans()),
        minor_may_consent_alone=draw(st.booleans()),
        hipaa_restrictions=(HipaaRestriction(recipients=(ident,), purposes=("HPAYMT",)),) if restrict else (),
    )


def _date(day: int) -> str:
    return (_START + timedelta(days=day)).date().isoformat()


@st.composite
def periods(draw: st.DrawFn) -> dict[str, str] | None:
    if draw(st.booleans()):
        return None
    start = draw(st.integers(min_value=-100, max_value=700))
    period = {"start": _date(start)}
    if draw(st.booleans()):
        period["end"] = _date(start + draw(st.integers(min_value=0, max_value=400)))
    return period


@st.composite
def provisions(draw: st.DrawFn, ctx: MappingContext, depth: int = 0) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": draw(st.sampled_from(["permit", "deny"]))}
    period = draw(periods())
    if period and draw(st.booleans()):
        provision["period"] = period
    actors = draw(st.lists(st.sampled_from([*RECIPIENTS, "treating-providers"]), max_size=2, unique=True))
    if actors:
        provision["actor"] = [
            {
                "role": IRCP,
                "reference": (
                    {"identifier": {"system": RECIPIENT_CLASS_SYSTEM, "value": a}, "display": "My treating providers"}
                    if a == "treating-providers"
                    else {"reference": f"Organization/{ctx.id('Organization', a)}"}
                ),
            }
            for a in actors
        ]
    purposes = draw(st.lists(st.sampled_from(PURPOSES), max_size=3, unique=True))
    if purposes:
        provision["purpose"] = [{"system": REASON, "code": p} for p in purposes]
    labels = draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True))
    if labels:
        provision["securityLabel"] = [{"system": ACT, "code": c} for c in labels]
    if depth < 2:
        children = draw(st.lists(provisions(ctx, depth + 1), max_size=2))
        if children:
            provision["provision"] = children
    return provision


@st.composite
def generated_consent(draw: st.DrawFn, ctx: MappingContext, patient: str, n: int) -> dict[str, Any]:
    part2 = draw(st.booleans())
    root = draw(provisions(ctx))
    period = draw(periods())
    if period:
        root["period"] = period
    signed = period["start"] if period else _date(draw(st.integers(min_value=-200, max_value=600)))
    return {
        "resourceType": "Consent",
        "id": f"gen-{n}",
        "meta": {"source": ctx.program_url("prog-sud" if part2 else "prog-omh")},
        "identifier": [{"system": f"{ctx.fhir_base}/sid/consent", "value": f"gen-{n}"}],
        "status": draw(st.sampled_from(["active", "active", "active", "inactive", "entered-in-error", "draft"])),
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "dateTime": f"{signed}T00:00:00-05:00",
        "performer": [{"reference": patient}],
        "policyRule": {
            "coding": [
                {"system": ACT, "code": "42CFRPart2"}
                if part2
                else {"system": "http://terminology.hl7.org/CodeSystem/consentpolicycodes", "code": "hipaa-auth"}
            ]
        },
        "provision": root,
    }


@st.composite
def mutated(draw: st.DrawFn, consent: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(consent)
    out["status"] = draw(st.sampled_from(["active", "active", "active", "inactive", "entered-in-error"]))
    if draw(st.booleans()):
        provision = dict(out["provision"])
        provision["period"] = draw(periods()) or provision.get("period") or {"start": "2025-01-01"}
        out["provision"] = provision
    return out


@st.composite
def labeled_entries(draw: st.DrawFn, bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The Bundle with existing security labels on a few resources (never removed by the engine)."""
    entries = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] not in ("Organization", "Practitioner") and draw(st.integers(0, 5)) == 0:
            system, code = draw(st.sampled_from(EXISTING))
            meta = dict(resource.get("meta") or {})
            meta["security"] = [*meta.get("security", []), {"system": system, "code": code}]
            resource = {**resource, "meta": meta}
        entries.append({**entry, "resource": resource})
    return {**bundle, "entry": entries}
