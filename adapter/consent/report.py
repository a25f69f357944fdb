"""A readable decision report for a Disclosure (pure text; the CLI prints it).

Names resources by type and business identifier (never by content), lists what was released and what was
withheld with the rule ids and titles, the consents considered, and the obligations attached.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from adapter.consent.enforce import Disclosure
from adapter.consent.model import Reason
from adapter.consent.vocab import rule

_DIRECTORY = ("Organization/", "Practitioner/", "PractitionerRole/", "Location/")


def _name(key: str, resources: Mapping[str, Mapping[str, Any]]) -> str:
    resource = resources.get(key) or {}
    identifiers = resource.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else identifiers
    value = first.get("value") if isinstance(first, Mapping) else None
    return f"{key.partition('/')[0]} {value}" if value else key


def _reason(reason: Reason) -> str:
    text = f"{reason.rule} ({rule(reason.rule).title})"
    if reason.consent is not None:
        text += f" consent {reason.consent}"
    return text


def report_lines(disclosure: Disclosure, resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """`resources`: the input resources by key (to name withheld ones by their business identifier)."""
    request = disclosure.decision.request
    recipient = request.recipient_name or ", ".join(
        str(i) for i in (*request.recipient_organizations, *request.recipient_practitioners)
    )
    lines = [
        f"Disclosure {disclosure.id}",
        f"  to: {recipient}",
        f"  purpose: {request.purpose}   at: {request.instant.isoformat()}",
    ]
    if request.emergency is not None:
        lines.append(f"  emergency: {request.emergency.description} (declared by {request.emergency.declared_by})")
    lines.append("Consents considered:")
    for assessment in disclosure.decision.consents:
        state = "in force" if assessment.in_force_part2 or assessment.in_force_hipaa else "not in force"
        why = "; ".join(_reason(r) for r in assessment.reasons if r.rule != "CNS-IN-FORCE")
        lines.append(f"  {assessment.consent}: {state}" + (f" - {why}" if why else ""))
    if not disclosure.decision.consents:
        lines.append("  none")
    released = [k for k in disclosure.released if not k.startswith(_DIRECTORY)]
    lines.append(
        f"Released ({len(released)} resources, plus {len(disclosure.released) - len(released)} directory entries):"
    )
    by_rules: Counter[str] = Counter()
    for key in released:
        item = disclosure.decision.of(key)
        by_rules[" + ".join(item.rules) if item else "PT2-NOTICE"] += 1
    for rules, count in sorted(by_rules.items()):
        lines.append(f"  {count:3d} x {rules}")
    if disclosure.notice:
        lines.append(f"  42 CFR 2.32 notice attached: {disclosure.notice}")
    clinical_withheld = [w for w in disclosure.withheld if not w.resource.startswith(_DIRECTORY)]
    lines.append(f"Withheld ({len(clinical_withheld)}):")
    for withheld in clinical_withheld:
        reasons = "; ".join(_reason(r) for r in withheld.reasons) or "not permitted"
        lines.append(f"  {_name(withheld.resource, resources)}: {reasons}")
    obligations = disclosure.decision.obligations
    if obligations:
        lines.append("Obligations: " + ", ".join(obligations))
    lines.append(f"Audit: {disclosure.audit_records} AuditEvent(s) recorded")
    return lines
