"""Psychotherapy notes and SUD counseling notes: a note is one by the adapter's type code or by its labels, and it
is released only under a separate consent that names the notes, the recipient and the purpose."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from adapter.consent import Disclosure, DisclosureRequest, Identifier, enforce, label
from adapter.pipeline import MappedChart
from adapter.terminology.systems import NPI
from tests.consent.harness import NullAudit, consent, key, patient_key, with_identifier

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ADAPTER = "https://bh-fhir-adapter.dev/fhir/CodeSystem/bh-adapter"
IRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}
NORTHFIELD = Identifier(system=NPI, value="1728035910")
CVRH = Identifier(system=NPI, value="1106944287")
STRANGER = Identifier(system=NPI, value="1999999999")


def _as_a_partner_sends_it(note: dict[str, Any], codes: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The note labeled on input, with a type a partner would use (no adapter code)."""
    security = [{"system": system, "code": code} for system, code in codes]
    return {
        **note,
        "meta": {**note["meta"], "security": security},
        "type": {"coding": [c for c in note["type"]["coding"] if c["system"] != ADAPTER]},
    }


def _replace(chart: MappedChart, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {
        **chart.bundle,
        "entry": [{**e, "resource": new} if e["resource"] is old else e for e in chart.bundle["entry"]],
    }


def _disclose(bundle: dict[str, Any], consents: list[dict[str, Any]], **request: Any) -> Disclosure:
    base: dict[str, Any] = {
        "recipient_organizations": (NORTHFIELD,),
        "purpose": "TREAT",
        "instant": datetime.fromisoformat("2026-06-01T10:00:00-04:00"),
    }
    return enforce(bundle, DisclosureRequest(**(base | request)), consents, audit=NullAudit())


@pytest.mark.parametrize(
    "codes",
    [
        [(ACT, "PSYTHPN")],
        [(ACT, "HIPAAPsyNotes")],
        [(ACT, "PSYTHPN"), (ACT, "HIPAAPsyNotes"), (CONF, "R")],
    ],
    ids=["PSYTHPN", "HIPAAPsyNotes", "both"],
)
def test_a_note_labeled_as_psychotherapy_note_on_input_is_one(
    codes: list[tuple[str, str]], mapped: dict[str, MappedChart]
) -> None:
    """45 CFR 164.508(a)(2): a psychotherapy note from a partner, labeled but without the adapter's type code, is
    not released for treatment by the HIPAA default."""
    chart = mapped["cl-09"]
    note = with_identifier(chart, "note-09-psychotherapy")
    bundle = _replace(chart, note, _as_a_partner_sends_it(note, codes))
    labels = label(bundle).labels[key(note)]
    assert labels.note_kind == "psychotherapy-note"
    assert {"PSYTHPN", "HIPAAPsyNotes"} <= labels.codes
    disclosure = _disclose(bundle, [])
    item = disclosure.decision.of(key(note))
    assert item is not None and item.status == "deny" and "NOTES-NEED-NAMING-CONSENT" in item.rules
    assert key(note) not in disclosure.released


def test_a_part2_record_labeled_psythpn_is_a_counseling_note(mapped: dict[str, MappedChart]) -> None:
    """42 CFR 2.31(b): THO has no label for SUD counseling notes; PSYTHPN on a Part 2 record is one, and the
    client's TPO consent does not release it to the treating hospital."""
    chart = mapped["cl-10"]
    note = with_identifier(chart, "note-10-counsel")
    relabeled = _as_a_partner_sends_it(note, [(ACT, "PSYTHPN"), (ACT, "42CFRPart2")])
    bundle = _replace(chart, note, relabeled)
    labels = label(bundle).labels[key(note)]
    assert labels.note_kind == "sud-counseling-note" and labels.part2
    assert "HIPAAPsyNotes" not in labels.codes
    consents = [r for r in chart.resources if r["resourceType"] == "Consent"]
    disclosure = _disclose(
        bundle,
        consents,
        recipient_organizations=(CVRH,),
        instant=datetime.fromisoformat("2026-06-15T10:00:00-04:00"),
        treating_relationship=True,
    )
    item = disclosure.decision.of(key(note))
    assert item is not None and item.status == "deny" and "NOTES-NEED-NAMING-CONSENT" in item.rules
    condition = disclosure.decision.of(key(with_identifier(chart, "dx-10-cocaine")))
    assert condition is not None and condition.status == "permit"  # the TPO consent itself still works


def _notes_consent(chart: MappedChart, provision: dict[str, Any]) -> dict[str, Any]:
    permit = {"type": "permit", "securityLabel": [{"system": ACT, "code": "PSYTHPN"}], **provision}
    return consent(patient_key(chart), permit, id="psy-notes", dateTime="2026-01-01T10:00:00-05:00")


NAMES_NORTHFIELD = {"actor": [{"role": IRCP, "reference": {"identifier": {"system": NPI, "value": NORTHFIELD.value}}}]}
FOR_TREATMENT = {"purpose": [{"system": REASON, "code": "TREAT"}]}


@pytest.mark.parametrize(
    ("provision", "recipient", "purpose", "released"),
    [
        ({}, STRANGER, "HMARKT", False),  # names no recipient and no purpose: nobody, for nothing
        ({}, NORTHFIELD, "TREAT", False),
        (NAMES_NORTHFIELD, NORTHFIELD, "TREAT", False),  # no purpose described
        (FOR_TREATMENT, NORTHFIELD, "TREAT", False),  # no recipient named
        (NAMES_NORTHFIELD | FOR_TREATMENT, STRANGER, "TREAT", False),
        (NAMES_NORTHFIELD | FOR_TREATMENT, NORTHFIELD, "HRESCH", False),
        (NAMES_NORTHFIELD | FOR_TREATMENT, NORTHFIELD, "TREAT", True),
    ],
)
def test_a_notes_authorization_must_name_the_recipient_and_the_purpose(
    provision: dict[str, Any], recipient: Identifier, purpose: str, released: bool, mapped: dict[str, MappedChart]
) -> None:
    """45 CFR 164.508(c)(1)(iii)-(iv): an authorization names the recipient and describes the purpose."""
    chart = mapped["cl-09"]
    note = key(with_identifier(chart, "note-09-psychotherapy"))
    disclosure = _disclose(
        chart.bundle, [_notes_consent(chart, provision)], recipient_organizations=(recipient,), purpose=purpose
    )
    assert (note in disclosure.released) is released
    item = disclosure.decision.of(note)
    assert item is not None and (item.status == "permit") is released
    if not released and not provision and purpose == "HMARKT":
        assert "NOTES-RECIPIENT-AND-PURPOSE" in item.rules
