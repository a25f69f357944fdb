"""Step 3b, annotate (pure): the 42 CFR 2.32 notice and the explanation of the consents relied on.

Carrier (docs/consent.md): one DocumentReference per Part 2 disclosure (made with consent, or in an emergency,
where 2.32 is not required but costs nothing and travels with the records). Its attachment
(text/plain) holds the 2.32(a) statement, a plain-language summary of the redisclosure rules and, per consent
relied on, a plain explanation of its scope (2.32(b)); ``context.related`` points at the Consent resources, which
travel in the same Bundle as the copy of the consent. The document is labeled 42CFRPart2, R and NORDSCLCD.
DocumentReference is an R4 resource the compiled validator knows; Composition or
Basic are not in adapter/schema/resource_types.yaml.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from adapter.consent.consents import ConsentView, Provision
from adapter.consent.labeler import Basis, security_coding
from adapter.consent.model import Emergency
from adapter.consent.vocab import PART2, V3_ACT_CODE, V3_CONFIDENTIALITY, load_yaml, vocabulary
from adapter.fhir import Resource
from adapter.mappings.context import fhir_instant
from adapter.mappings.profiles import ADAPTER_CODES, RECIPIENT_CLASS_SYSTEM

NOTICE_CODE = "part2-redisclosure-notice"


@cache
def notice_text() -> tuple[str, str, str]:
    """(2.32(a) statement, plain-language explanation, document title) from data/notice.yaml."""
    raw = load_yaml("notice.yaml")
    return str(raw["statement"]["text"]), " ".join(str(raw["explanation"]["text"]).split()), str(raw["title"])


def _recipients(provision: Provision, display: Mapping[str, str]) -> list[str]:
    names = []
    for actor in provision.actors:
        identifier = actor.reference.get("identifier") or {}
        if identifier.get("system") == RECIPIENT_CLASS_SYSTEM:
            names.append(str(actor.reference.get("display") or identifier.get("value")))
        else:
            ref = str(actor.reference.get("reference") or "")
            names.append(display.get(ref) or str(actor.reference.get("display") or ref or "a named recipient"))
    return names


def _describe(provision: Provision, display: Mapping[str, str]) -> str:
    vocab = vocabulary()
    parts = [("Permits" if provision.type == "permit" else "Denies") + " disclosure"]
    recipients = _recipients(provision, display)
    if recipients:
        parts.append("to " + ", ".join(recipients))
    if provision.purposes:
        parts.append("for " + ", ".join(code for _, code in provision.purposes))
    if provision.security_labels:
        kinds = [vocab.sensitivity_display.get(code, code) for _, code in provision.security_labels]
        parts.append("of " + ", ".join(kinds))
    if provision.period:
        start, end = provision.period.get("start"), provision.period.get("end")
        parts.append(f"from {start}" + (f" until {end}" if end else " until revoked"))
    text = " ".join(parts) + "."
    for child in provision.children:
        text += " Exception: " + _describe(child, display)
    return text


def explain(view: ConsentView, display: Mapping[str, str]) -> str:
    """A plain explanation of a consent's scope (42 CFR 2.32(b))."""
    who = view.ref.identifier.rpartition("|")[2] if view.ref.identifier else view.ref.id
    version = f", version {view.ref.version}" if view.ref.version else ""
    head = f"Consent {who}{version}, signed {view.signed or 'on an unknown date'}, status {view.status}"
    body = _describe(view.root, display) if view.root else "It states no provisions."
    return f"{head}: {body}"


def notice_document(
    *,
    resource_id: str,
    identifier_system: str,
    disclosure_id: str,
    patient_reference: str,
    consents: Sequence[ConsentView],
    display: Mapping[str, str],
    instant: Any,
    emergency: Emergency | None = None,
) -> Resource:
    statement, explanation, title = notice_text()
    lines = [statement, "", explanation, ""]
    lines += [explain(view, display) for view in consents]
    if emergency is not None:
        # 2.32 is required for consented disclosures; an emergency disclosure (2.51) carries it too, with why.
        lines.append(
            "Disclosed without the patient's consent to medical personnel for a bona fide medical emergency "
            f"(42 CFR 2.51): {emergency.description}; declared by {emergency.declared_by}."
        )
    data = base64.b64encode("\n".join(lines).encode("utf-8")).decode("ascii")
    vocab = vocabulary()
    basis = Basis("PT2-NOTICE")
    when = fhir_instant(instant)
    document: Resource = {
        "resourceType": "DocumentReference",
        "id": resource_id,
        "meta": {
            "security": [
                security_coding(V3_ACT_CODE, PART2, vocab.policy_display[PART2], basis),
                security_coding(V3_CONFIDENTIALITY, "R", vocab.confidentiality_display["R"], basis),
                security_coding(V3_ACT_CODE, "NORDSCLCD", vocab.refrain_display["NORDSCLCD"], basis),
                # Not RedisclosureProhibitionMark: THO added it to v3-ActCode after R4 4.0.1, whose bundled
                # v3-ActCode lacks it, so R4 validators (HL7's included) reject the notice for an unknown code.
                # The notice's text and the NORDSCLCD refrain carry the 2.32 prohibition.
            ]
        },
        "identifier": [{"system": identifier_system, "value": disclosure_id}],
        "status": "current",
        "type": {
            "coding": [{"system": ADAPTER_CODES, "code": NOTICE_CODE, "display": "42 CFR Part 2 redisclosure notice"}],
            "text": title,
        },
        "subject": {"reference": patient_reference},
        "date": when,
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": "en",
                    "data": data,
                    "title": title,
                    "creation": when,
                }
            }
        ],
    }
    if consents:
        document["context"] = {"related": [{"reference": view.key} for view in consents]}
    return document
