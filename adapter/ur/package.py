"""build_package: a client's utilization-review package for one payer, through the consent release point.

label the whole chart -> select the minimum necessary (labels kept) -> enforce (decides, redacts, audits, adds the
42 CFR 2.32 notice) -> build the Claim, Coverage and worksheet from what enforce released -> one Bundle.
Nothing in the Bundle comes from a resource enforce did not release; the request side (Claim, Coverage, worksheet)
carries the security labels of the evidence it was built from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.consent import AuditLog, DisclosureRequest, Identifier, enforce, label
from adapter.consent.graph import key_of, reference_key, scan
from adapter.consent.labeler import with_security
from adapter.consent.vocab import V3_CONFIDENTIALITY, rule, vocabulary
from adapter.errors import FhirValidationError, NothingReleasableError, Problem, UsageError
from adapter.fhir import Resource, deterministic_id
from adapter.mappings.context import fhir_instant
from adapter.pipeline import MappedChart
from adapter.schema import validator
from adapter.sync.partners import Partner
from adapter.terminology.systems import NPI
from adapter.ur import claim as claims
from adapter.ur.catalog import UrRequest, catalog
from adapter.ur.select import DIRECTORY_TYPES, Excluded, effective, select
from adapter.ur.worksheet import Evidence, questionnaire, worksheet_response

_ORDER = ("Claim", "Patient", "Coverage", "Organization", "Condition", "Observation", "CarePlan", "Goal")


@dataclass(frozen=True)
class UrPackage:
    bundle: Resource
    disclosure_id: str  # the audit trail's id for this release (AuditEvents carry it)
    excluded: tuple[Excluded, ...]  # left out as not minimum necessary
    withheld: tuple[Excluded, ...]  # selected but withheld by the consent rules
    notice: str | None  # the 42 CFR 2.32 notice DocumentReference, when Part 2 data was released


def check_payer(partner: Partner | None, payer_id: str) -> Partner:
    if partner is None:
        raise UsageError(f"no partner {payer_id!r} in the partners file")
    if partner.role != "insurer":
        raise UsageError(f"partner {payer_id!r} is not an insurer (role {partner.role})")
    return partner


def disclosure_request(
    partner: Partner,
    request: UrRequest,
    payer_identifiers: Sequence[Identifier],
    by: str,
    timezone: str | None = None,
) -> DisclosureRequest:
    """The payer's organization NPI (plus its other identifiers in the clinic's directory, which consents may name
    it by), the purpose the caller asked for, the request instant and the context attested for this partner."""
    npi = Identifier(system=NPI, value=partner.recipient.organization_npi)
    return DisclosureRequest(
        recipient_organizations=(npi, *(i for i in payer_identifiers if i != npi)),
        recipient_name=partner.recipient.name or partner.name,
        purpose=request.purpose,
        instant=request.instant,
        timezone=timezone,
        disclosed_by=by,
        treating_relationship=partner.attested.treating_relationship,
        recipient_is_medical_personnel=partner.attested.recipient_is_medical_personnel,
    )


def _payer_identifiers(directory: Sequence[Resource], npi: str) -> list[Identifier]:
    for organization in directory:
        identifiers = organization.get("identifier") or ()
        if any(i.get("system") == NPI and i.get("value") == npi for i in identifiers):
            return [Identifier(system=i["system"], value=i["value"]) for i in identifiers if i.get("system")]
    return []


def _labels_of(resources: Sequence[Resource]) -> list[dict[str, Any]]:
    """The labels a resource built from `resources` carries: every sensitivity and policy label of them, and one
    confidentiality code, their high-water mark (a label has at most one confidentiality code)."""
    vocab = vocabulary()
    codings: dict[tuple[str, str], dict[str, Any]] = {}
    confidentiality: dict[str, dict[str, Any]] = {}
    for resource in resources:
        for coding in (resource.get("meta") or {}).get("security") or ():
            system, code = str(coding.get("system")), str(coding.get("code"))
            if vocab.canonical_system(system) == V3_CONFIDENTIALITY:
                confidentiality.setdefault(code, coding)
            else:
                codings.setdefault((system, code), coding)
    highest = vocab.highest_confidentiality(set(confidentiality))
    return [*codings.values(), *([confidentiality[highest]] if highest in confidentiality else [])]


def _sort_key(resource: Resource, position: int) -> tuple[int, int, str, int]:
    rtype = resource["resourceType"]
    rank = _ORDER.index(rtype) if rtype in _ORDER else len(_ORDER)
    if rtype == "Observation":
        codes = [i.code for i in catalog().instruments]
        code = next((str(c.get("code")) for c in resource["code"].get("coding") or ()), "")
        when = effective(resource)
        return rank, codes.index(code) if code in codes else len(codes), when.isoformat() if when else "", position
    return rank, 0, "", position


def _check_references(entries: Sequence[Mapping[str, Any]]) -> None:
    by_full_url = {str(e["fullUrl"]): key_of(e["resource"]) for e in entries}
    keys = {key_of(e["resource"]) for e in entries}
    problems = [
        Problem("reference to a resource not in the package", location=path)
        for entry in entries
        for path, text in scan(entry["resource"])[1]
        if not text.startswith("#") and reference_key(text, by_full_url) not in keys
    ]
    if problems:
        raise FhirValidationError("the UR package has dangling references (a defect: nothing sent)", problems)


def build_package(
    chart: MappedChart,
    partner: Partner,
    request: UrRequest,
    *,
    audit: AuditLog,
    by: str = "bh-adapter ur",
    timezone: str | None = None,
) -> UrPackage:
    """The PAS-shaped Bundle for `request`. Raises NothingReleasableError when the consent rules withhold the
    client's record itself, FhirValidationError or AuditError (from enforce) when nothing may be released.
    `timezone`: the clinic's calendar, by which date-only consent bounds are judged (Settings.clinic_timezone)."""
    bundle = chart.bundle
    patient_url = next(str(e["fullUrl"]) for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    base = patient_url.rsplit("/Patient/", 1)[0]
    labeled = label(bundle)  # labels from the whole chart: a label a left-out resource gave stays
    resources = [labeled.resources[key_of(e["resource"])] for e in bundle["entry"]]
    selection = select(resources, labeled.labels, request)
    chosen = set(selection.keys)
    offered = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": e["fullUrl"], "resource": labeled.resources[key_of(e["resource"])]}
            for e in bundle["entry"]
            if key_of(e["resource"]) in chosen
        ],
    }
    directory = [r for r in chart.resources if r["resourceType"] in DIRECTORY_TYPES]
    npi = partner.recipient.organization_npi
    consents = [r for r in chart.resources if r["resourceType"] == "Consent"]
    dreq = disclosure_request(partner, request, _payer_identifiers(directory, npi), by, timezone)
    disclosure = enforce(offered, dreq, consents, audit=audit)

    withheld = tuple(
        Excluded(
            w.resource,
            " + ".join(dict.fromkeys(r.rule for r in w.reasons)) or "not permitted",
            "; ".join(dict.fromkeys(rule(r.rule).title for r in w.reasons)) or "not permitted",
        )
        for w in disclosure.withheld
        if w.resource.partition("/")[0] not in DIRECTORY_TYPES
    )
    # Consent copies come from the consent list, not the offered Bundle: they get a fullUrl like every entry.
    entries = [
        {"fullUrl": e.get("fullUrl") or f"{base}/{key_of(e['resource'])}", "resource": e["resource"]}
        for e in disclosure.bundle.get("entry") or ()
    ]
    released = [e["resource"] for e in entries]
    patient = next((r for r in released if r["resourceType"] == "Patient"), None)
    if patient is None or not patient.get("managingOrganization"):
        raise NothingReleasableError(
            f"client {request.client}: the consent rules withhold the client's record from payer {partner.id} "
            f"for {request.purpose} (audited as disclosure {disclosure.id}); no package was built"
        )

    def mint(rtype: str) -> str:
        return deterministic_id(rtype, "ur", disclosure.id)

    payer = claims.payer_organization(partner, directory)
    conditions = [r for r in released if r["resourceType"] == "Condition"]
    scores = sorted((r for r in released if r["resourceType"] == "Observation"), key=lambda r: _sort_key(r, 0))
    plans = [r for r in released if r["resourceType"] == "CarePlan"]
    evidence = Evidence.of(key_of(patient), released)
    provider = patient["managingOrganization"]
    response, used = worksheet_response(
        evidence, request, resource_id=mint("QuestionnaireResponse"), author=provider["reference"]
    )
    by_key = {key_of(r): r for r in released}
    response = with_security(response, _labels_of([by_key[k] for k in sorted(used)]))
    coverage = with_security(
        claims.coverage(mint("Coverage"), patient, payer, request.member_id), _labels_of([patient])
    )
    built = claims.claim(
        resource_id=mint("Claim"),
        identifier={"system": f"{base}/sid/ur-request", "value": disclosure.id},
        request=request,
        patient=patient,
        payer=payer,
        provider=provider,
        coverage_resource=coverage,
        conditions=conditions,
        evidence=[*scores, *plans],
        worksheet=response,
    )
    built = with_security(built, _labels_of([patient, *conditions, *scores, *plans, response]))

    extra = [built, coverage, questionnaire(), response]
    if key_of(payer) not in by_key:
        extra.append(payer)
    entries += [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in extra]
    entries = [e for _, e in sorted(enumerate(entries), key=lambda p: _sort_key(p[1]["resource"], p[0]))]

    out: Resource = {"resourceType": "Bundle", "id": mint("Bundle")}
    if "meta" in disclosure.bundle:
        out["meta"] = disclosure.bundle["meta"]
    out["identifier"] = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{mint('Bundle')}"}
    out["type"] = "collection"
    out["timestamp"] = fhir_instant(request.instant)
    out["entry"] = entries
    validator.validate(out)
    _check_references(entries)
    return UrPackage(out, disclosure.id, selection.excluded, withheld, disclosure.notice)


def report_lines(package: UrPackage) -> list[str]:
    """What was sent, left out and withheld, by resource id and rule (no PHI)."""
    entries = package.bundle.get("entry") or ()
    lines = [f"UR package {package.bundle['id']} (disclosure {package.disclosure_id}): {len(entries)} entries"]
    if package.notice:
        lines.append(f"  42 CFR 2.32 notice attached: {package.notice}")
    lines.append(f"Withheld by the consent rules ({len(package.withheld)}):")
    lines += [f"  {w.resource}: {w.rule} ({w.reason})" for w in package.withheld]
    lines.append(f"Left out as not minimum necessary ({len(package.excluded)}):")
    lines += [f"  {e.resource}: {e.rule} ({e.reason})" for e in package.excluded]
    return lines
