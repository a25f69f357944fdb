"""The release point: enforce() is the only function that releases data.

label -> decide -> redact -> annotate -> validate -> audit -> release. The disclosed Bundle is built from shallow
rebuilds (inputs are never modified), validated with the compiled R4 validator (only where it changed its input,
when the caller vouches for the input: ``validated_input``) and checked for dangling references; then every
decision is written to the audit log in one transaction. If validation or the audit
write fails, an error is raised and nothing is released (fail closed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapter import fhir
from adapter.consent.audit import Audited, AuditLog, AuditRecord, audit_events
from adapter.consent.consents import parse_consent
from adapter.consent.decide import ATTACH_NOTICE, NORDSCLCD, decide
from adapter.consent.graph import Graph, Node, key_of, reference_key, references, scan
from adapter.consent.labeler import (
    Basis,
    LabeledBundle,
    is_generated_coding,
    label,
    security_coding,
    with_security,
)
from adapter.consent.model import Decision, DisclosureRequest, Reason
from adapter.consent.notice import notice_document
from adapter.consent.redact import Redaction, redact
from adapter.consent.sources import ProgramFacts
from adapter.consent.vocab import V3_ACT_CODE, V3_CONFIDENTIALITY, vocabulary
from adapter.errors import FhirValidationError, Problem
from adapter.fhir import Resource, uuid5_text
from adapter.mappings.context import fhir_instant
from adapter.schema import validator

_NAMESPACE = bytes.fromhex("5d1c0e7a9b8f4c3d2e1f0a9b8c7d6e5f")


@dataclass(frozen=True)
class Withheld:
    resource: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Disclosure:
    """What was released (the Bundle), what was withheld and why, and the decision behind it."""

    id: str
    bundle: Resource
    decision: Decision
    released: tuple[str, ...]  # keys of the released entries, notice included
    withheld: tuple[Withheld, ...]
    notice: str | None  # key of the 2.32 notice DocumentReference, when one was attached
    audit_records: int


def _with_consents(bundle: Mapping[str, Any], consents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The Bundle plus the consents that are not already in it (a consent store outside the chart), so that the
    copies relied on are labeled and released like every entry. Shallow: entries are shared."""
    present = {key_of(e.get("resource") or {}) for e in bundle.get("entry") or ()}
    extra = [{"resource": c} for c in consents if key_of(c) not in present]
    if not extra:
        return dict(bundle)
    return {**bundle, "entry": [*(bundle.get("entry") or ()), *extra]}


def disclosure_id(bundle: Mapping[str, Any], request: DisclosureRequest, consents: Sequence[Mapping[str, Any]]) -> str:
    """Deterministic: the same Bundle, request and consents give the same id (and the same output)."""
    digest = hashlib.sha256(fhir.dumps(bundle))
    digest.update(request.model_dump_json().encode("utf-8"))
    for consent in consents:
        digest.update(fhir.dumps(consent))
    return uuid5_text(_NAMESPACE, digest.hexdigest())


def _base(bundle: Mapping[str, Any]) -> str | None:
    for entry in bundle.get("entry") or ():
        url, resource = entry.get("fullUrl"), entry.get("resource") or {}
        suffix = f"/{resource.get('resourceType')}/{resource.get('id')}"
        if isinstance(url, str) and url.endswith(suffix) and url.startswith("http"):
            return url[: -len(suffix)]
    return None


def _refrain(resource: Resource) -> Resource:
    coding = security_coding(V3_ACT_CODE, NORDSCLCD, vocabulary().refrain_display[NORDSCLCD], Basis("PT2-NOTICE"))
    return with_security(resource, [coding])


def _high_water_mark(resources: Iterable[Resource]) -> str | None:
    vocab = vocabulary()
    codes = {
        str(c.get("code"))
        for r in resources
        for c in (r.get("meta") or {}).get("security") or ()
        if vocab.canonical_system(str(c.get("system"))) == V3_CONFIDENTIALITY
    }
    return vocab.highest_confidentiality(codes)


def _unchanged_inputs(entries: list[dict[str, Any]], graph: Graph) -> dict[str, Node]:
    """Entry key -> its input node, for each released resource the release point changed at most in `meta`: the
    graph's findings about the input (references, validity) still hold for it."""
    unchanged = {}
    for entry in entries:
        resource = entry["resource"]
        node = graph.get(key_of(resource))
        if node is not None and only_meta_changed(resource, node.resource):
            unchanged[node.key] = node
    return unchanged


def _check_references(entries: list[dict[str, Any]], unchanged: Mapping[str, Node]) -> None:
    """No dangling reference: every literal reference resolves to an entry of the disclosed Bundle.

    A resource the release point changed only in `meta` has the references the graph resolved in its input
    (the same reference_key, so the same verdict); its meta and text, which the graph does not walk, and any
    other resource are walked."""
    by_full_url = {str(e["fullUrl"]): key_of(e["resource"]) for e in entries if e.get("fullUrl")}
    keys = {key_of(e["resource"]) for e in entries}
    problems = []
    for entry in entries:
        resource = entry["resource"]
        node = unchanged.get(key_of(resource))
        if node is not None:
            resolved = all(r.target in keys or r.reference.startswith("#") for r in node.references)
            texts = _unwalked_references(resource)
        else:
            resolved, texts = True, list(references(resource))
        if resolved and all(t.startswith("#") or reference_key(t, by_full_url) in keys for t in texts):
            continue
        located = [  # the rare failure: walk again for the paths
            Problem("reference to a resource that is not disclosed", location=path)
            for path, text in scan(resource)[1]
            if not text.startswith("#") and reference_key(text, by_full_url) not in keys
        ]
        # scan() does not walk meta and text: a dangling reference there is reported without its path.
        problems += located or [Problem("reference to a resource that is not disclosed", location=key_of(resource))]
    if problems:
        raise FhirValidationError("the disclosed Bundle has dangling references (a defect: nothing released)", problems)


def _unwalked_references(resource: Resource) -> list[str]:
    """The references in meta and text, which the graph does not walk (the engine's own codings have none)."""
    found: list[str] = []
    meta = resource.get("meta")
    if isinstance(meta, dict):
        for name, value in meta.items():
            if name == "security" and isinstance(value, list):
                found += [text for c in value if not is_generated_coding(c) for text in references(c)]
            elif isinstance(value, dict | list):
                found += references(value)
    text = resource.get("text")
    if isinstance(text, dict) and "extension" in text:
        found += references(text)
    return found


def _validate(
    out: dict[str, Any], entries: list[dict[str, Any]], unchanged: Mapping[str, Node], validated_input: bool
) -> None:
    """The disclosed Bundle is valid R4. With `validated_input` (the caller vouches for its input, as a
    MappedChart's was validated at mapping), only what the release point built or changed is checked again:
    a resource it changed only in `meta` needs its new meta checked; a pruned resource, or the notice, whole."""
    if not validated_input:
        validator.validate(out)
        return
    for entry in entries:
        resource = entry["resource"]
        node = unchanged.get(key_of(resource))
        if node is None or not _meta_known_valid(resource.get("meta"), node.resource.get("meta")):
            validator.validate(resource)
    shell = {**out, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in entries]} if entries else out
    validator.validate(shell)


def _meta_known_valid(meta: Any, original: Any) -> bool:
    """A labeled meta is valid when its input was: it differs only by the engine's own security codings."""
    if meta is original:
        return True
    if not isinstance(meta, dict) or not isinstance(original, dict | None):
        return False
    original = original or {}
    if any(name != "security" and original.get(name, _ABSENT) is not value for name, value in meta.items()):
        return False
    present = original.get("security") or ()
    return all(is_generated_coding(c) or any(c is p for p in present) for c in meta.get("security") or ())


def only_meta_changed(resource: Mapping[str, Any], original: Mapping[str, Any]) -> bool:
    """`resource` is `original`, or a shallow rebuild of it that differs at most in `meta` (labels added)."""
    if resource is original:
        return True
    for name, value in resource.items():
        if name != "meta" and original.get(name, _ABSENT) is not value:
            return False
    return all(name in resource for name in original if name != "meta")


_ABSENT = object()


def _withheld(labeled: LabeledBundle, decision: Decision, red: Redaction) -> tuple[Withheld, ...]:
    out = []
    for node in labeled.graph:
        if node.key in red.resources:
            continue
        item = decision.of(node.key)
        reasons: tuple[Reason, ...] = item.reasons if item is not None and item.status == "deny" else ()
        if node.key in red.cascaded:
            reasons += (Reason("RED-CASCADE", None, f"depends on {red.cascaded[node.key]}"),)
        if node.key in red.unreferenced:
            reasons = (Reason("RED-UNREFERENCED"),)
        out.append(Withheld(node.key, reasons))
    return tuple(out)


def enforce(
    bundle: Mapping[str, Any],
    request: DisclosureRequest,
    consents: Sequence[Mapping[str, Any]],
    *,
    audit: AuditLog,
    external_sources: Iterable[ProgramFacts] = (),
    validated_input: bool = False,
) -> Disclosure:
    """Release what `request` may see of a client's Bundle, given the client's Consent resources.

    Raises FhirValidationError (a defect) or AuditError (the trail could not be written): then nothing is
    released. Inputs are never modified. `validated_input`: the caller vouches that every resource of `bundle`
    and `consents` is valid R4 (a MappedChart's); the output is then checked where the release point changed it.
    """
    working = _with_consents(bundle, consents)
    labeled = label(working, external_sources)
    decision = decide(request, [dict(c) for c in consents], labeled)
    red = redact(labeled.graph, labeled.resources, set(decision.permitted))
    did = disclosure_id(bundle, request, consents)
    released: dict[str, Resource] = {}
    for key in red.released:
        resource = red.resources[key]
        item = decision.of(key)
        if item is not None and NORDSCLCD in item.obligations:
            resource = _refrain(resource)
        released[key] = resource

    full_urls = {n.key: n.full_url for n in labeled.graph}
    base = _base(working)
    entries: list[dict[str, Any]] = [
        {**({"fullUrl": full_urls[k]} if full_urls.get(k) else {}), "resource": released[k]} for k in red.released
    ]
    notice_key = _attach_notice(decision, labeled, released, entries, did, base)

    out: dict[str, Any] = {"resourceType": "Bundle", "id": did}
    hwm = _high_water_mark(e["resource"] for e in entries)
    if hwm:
        out["meta"] = {
            "security": [
                {"system": V3_CONFIDENTIALITY, "code": hwm, "display": vocabulary().confidentiality_display[hwm]}
            ]
        }
    out["identifier"] = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{did}"}
    out["type"] = bundle.get("type") or "collection"
    out["timestamp"] = fhir_instant(request.instant)
    if "total" in bundle:
        matches = [e for e in entries if (e.get("search") or {}).get("mode", "match") == "match"]
        out["total"] = len(matches)
    if entries:
        out["entry"] = entries

    unchanged = _unchanged_inputs(entries, labeled.graph)
    _validate(out, entries, unchanged, validated_input)
    _check_references(entries, unchanged)

    withheld = _withheld(labeled, decision, red)
    records = _audit(did, decision, labeled, released, withheld)
    audit.record(records)
    keys = tuple(key_of(e["resource"]) for e in entries)
    return Disclosure(did, out, decision, keys, withheld, notice_key, len(records))


def _display_name(resource: Mapping[str, Any]) -> str:
    """An Organization's name, or a Practitioner's first HumanName as "prefix given family"."""
    name = resource.get("name")
    if isinstance(name, str):
        return name
    if isinstance(name, list) and name and isinstance(name[0], Mapping):
        first = name[0]
        parts = [*first.get("prefix", []), *first.get("given", []), first.get("family", "")]
        return str(first.get("text") or " ".join(p for p in parts if p))
    return ""


def _attach_notice(
    decision: Decision,
    labeled: LabeledBundle,
    released: Mapping[str, Resource],
    entries: list[dict[str, Any]],
    did: str,
    base: str | None,
) -> str | None:
    """Append the 2.32 notice when a Part 2 resource was released (with consent, or in an emergency); the
    consents relied on are already released as copies (decide marks them PT2-CONSENT-COPY)."""
    consented = [d for d in decision.resources if d.resource in released and d.part2 and ATTACH_NOTICE in d.obligations]
    patient = labeled.graph.patient()
    if not consented or patient is None or patient.key not in released:
        return None
    relied = {ref.id for d in consented for ref in d.relied_on}
    by_full_url = {n.full_url: n.key for n in labeled.graph if n.full_url}
    views = [
        parse_consent(labeled.graph.by_key[k].resource, by_full_url)
        for k in sorted(released)
        if k.startswith("Consent/") and k.partition("/")[2] in relied
    ]
    display = {n.key: name for n in labeled.graph if n.is_directory and (name := _display_name(n.resource))}
    resource_id = uuid5_text(_NAMESPACE, f"{did}|notice")
    document = notice_document(
        resource_id=resource_id,
        identifier_system=f"{base or 'urn:bh-fhir-adapter'}/sid/disclosure-notice",
        disclosure_id=did,
        patient_reference=patient.key,
        consents=views,
        display=display,
        instant=decision.request.instant,
        emergency=decision.request.emergency if any("PT2-EMERGENCY" in d.rules for d in consented) else None,
    )
    entry: dict[str, Any] = {"resource": document}
    entry = ({"fullUrl": f"{base}/DocumentReference/{resource_id}"} if base else {}) | entry
    entries.append(entry)
    return key_of(document)


def _audit(
    did: str,
    decision: Decision,
    labeled: LabeledBundle,
    released: Mapping[str, Resource],
    withheld: Sequence[Withheld],
) -> list[AuditRecord]:
    patient = labeled.graph.patient()
    extra = {w.resource: w.reasons for w in withheld}
    audited = []
    for item in decision.resources:
        is_released = item.resource in released
        resource = released.get(item.resource) or labeled.resources[item.resource]
        security = (resource.get("meta") or {}).get("security") or []
        more = () if is_released else tuple(r for r in extra.get(item.resource, ()) if r.rule.startswith("RED-"))
        audited.append(Audited(item, is_released, more, security))
    return audit_events(disclosure_id=did, decision=decision, audited=audited, patient=patient.key if patient else None)
