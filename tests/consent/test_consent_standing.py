"""Which consents count, and for what: signers among the performers, the signing date, malformed parts. A consent
that cannot be relied on to permit still denies (fail closed); reading a consent never raises."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from adapter.consent import Disclosure, DisclosureRequest, Identifier, enforce
from adapter.consent.model import ConsentAssessment
from adapter.pipeline import MappedChart
from adapter.terminology.systems import NPI
from tests.consent.harness import NullAudit, consent, key, patient_key, with_identifier

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
IRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}
NORTHFIELD = Identifier(system=NPI, value="1728035910")
CLINIC_NPI = "1655204174"  # Riverbend Behavioral Health, the clinic that receives the consents
RELEASING_RULES = {"DEC-CONSENT-PERMIT", "PT2-CONSENT"}


def _clinic(chart: MappedChart) -> str:
    return next(
        key(r)
        for r in chart.resources
        if r["resourceType"] == "Organization" and any(i.get("value") == CLINIC_NPI for i in r.get("identifier", []))
    )


def _consent(chart: MappedChart, provision: dict[str, Any], *, part2: bool = False, **extra: Any) -> dict[str, Any]:
    signed = {"id": "c-standing", "dateTime": "2026-01-01T10:00:00-05:00"}
    return consent(patient_key(chart), provision, part2=part2, **(signed | extra))


def _disclose(chart: MappedChart, consents: list[dict[str, Any]], **request: Any) -> Disclosure:
    base: dict[str, Any] = {
        "recipient_organizations": (NORTHFIELD,),
        "purpose": "TREAT",
        "instant": datetime.fromisoformat("2026-06-01T10:00:00-04:00"),
    }
    return enforce(chart.bundle, DisclosureRequest(**(base | request)), consents, audit=NullAudit())


def _assessment(disclosure: Disclosure) -> ConsentAssessment:
    (found,) = [a for a in disclosure.decision.consents if a.consent.id == "c-standing"]
    return found


def _rules(disclosure: Disclosure, chart: MappedChart, value: str) -> tuple[str, set[str]]:
    item = disclosure.decision.of(key(with_identifier(chart, value)))
    assert item is not None
    return item.status, set(item.rules)


DENY_MH = {"type": "deny", "securityLabel": [{"system": ACT, "code": "MH"}]}
NORTHFIELD_ACTOR = {"role": IRCP, "reference": {"identifier": {"system": NPI, "value": NORTHFIELD.value}}}
PERMIT_RESEARCH = {"type": "permit", "actor": [NORTHFIELD_ACTOR], "purpose": [{"system": REASON, "code": "HRESCH"}]}
PERMIT_TREATMENT = {"type": "permit", "actor": [NORTHFIELD_ACTOR], "purpose": [{"system": REASON, "code": "TREAT"}]}


# --- performers: the signer is looked for; a grantee is ignored ----------------------------------------------
def test_the_clinic_among_the_performers_does_not_drop_the_clients_deny(mapped: dict[str, MappedChart]) -> None:
    """R4 Consent.performer is the grantor or the grantee: the clinic listed next to the client is normal."""
    chart = mapped["cl-16"]
    performers = [{"reference": patient_key(chart)}, {"reference": _clinic(chart)}]
    disclosure = _disclose(
        chart,
        [_consent(chart, DENY_MH, performer=performers)],
        instant=datetime.fromisoformat("2026-10-26T10:00:00-04:00"),
    )
    assert "CNS-IN-FORCE" in {r.rule for r in _assessment(disclosure).reasons}
    status, rules = _rules(disclosure, chart, "dx-16-mdd")
    assert status == "deny" and "DEC-CONSENT-DENY" in rules


def test_a_grantee_among_the_performers_does_not_void_a_part2_permit(mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-02"]
    performers = [{"reference": _clinic(chart)}, {"reference": patient_key(chart)}]
    disclosure = _disclose(chart, [_consent(chart, PERMIT_TREATMENT, part2=True, performer=performers)])
    status, rules = _rules(disclosure, chart, "dx-02-oud")
    assert status == "permit" and "PT2-CONSENT" in rules


def test_a_consent_no_client_signed_never_permits_and_still_denies(mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-09"]
    only_clinic = [{"reference": _clinic(chart)}]
    permit = _disclose(chart, [_consent(chart, PERMIT_RESEARCH, performer=only_clinic)], purpose="HRESCH")
    assert {"CNS-INVALID-SIGNER", "CNS-DENIES-ONLY"} <= {r.rule for r in _assessment(permit).reasons}
    assert _rules(permit, chart, "dx-09-panic")[0] == "deny"
    deny = _disclose(chart, [_consent(chart, DENY_MH, performer=only_clinic)])
    status, rules = _rules(deny, chart, "dx-09-panic")
    assert status == "deny" and "DEC-CONSENT-DENY" in rules


# --- the signing date -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("signed", [None, "yesterday", 20260101])
@pytest.mark.parametrize(
    ("client", "provision", "part2", "purpose", "value"),
    [
        ("cl-02", PERMIT_TREATMENT, True, "TREAT", "dx-02-oud"),  # 42 CFR 2.31(a): a Part 2 consent is dated
        ("cl-09", PERMIT_RESEARCH, False, "HRESCH", "dx-09-panic"),  # 164.508(c)(1)(vi): so is an authorization
    ],
    ids=["part2", "hipaa-authorization"],
)
def test_an_undated_consent_never_permits(
    signed: Any,
    client: str,
    provision: dict[str, Any],
    part2: bool,
    purpose: str,
    value: str,
    mapped: dict[str, MappedChart],
) -> None:
    chart = mapped[client]
    dated = _disclose(chart, [_consent(chart, provision, part2=part2)], purpose=purpose)
    assert _rules(dated, chart, value)[0] == "permit"  # the same consent, dated, permits
    consent = _consent(chart, provision, part2=part2)
    if signed is None:
        del consent["dateTime"]
    else:
        consent["dateTime"] = signed
    undated = _disclose(chart, [consent], purpose=purpose)
    assert {"CNS-UNDATED", "CNS-DENIES-ONLY"} <= {r.rule for r in _assessment(undated).reasons}
    status, rules = _rules(undated, chart, value)
    assert status == "deny" and not rules & RELEASING_RULES
    assert key(with_identifier(chart, value)) not in undated.released


def test_an_undated_deny_still_denies(mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-09"]
    consent = _consent(chart, DENY_MH)
    del consent["dateTime"]
    status, rules = _rules(_disclose(chart, [consent]), chart, "dx-09-panic")
    assert status == "deny" and "DEC-CONSENT-DENY" in rules


# --- malformed parts: never a traceback; a permit does not permit, a deny still denies --------------------------
def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(consent: dict[str, Any]) -> None:
        node = consent
        for name in path[:-1]:
            node = node[name]
        node[path[-1]] = value

    return apply


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "period as text": _set(("provision", "period"), "2026"),
    "unreadable period": _set(("provision", "period"), {"start": "soon"}),
    "data period as text": _set(("provision", "dataPeriod"), "recent"),
    "actor as text": _set(("provision", "actor"), "Northfield"),
    "actor without reference": _set(("provision", "actor"), [{"role": IRCP}]),
    "purpose as text": _set(("provision", "purpose"), "HRESCH"),
    "label without code": _set(("provision", "securityLabel"), [{"system": ACT}]),
    "class as object": _set(("provision", "class"), {"code": "Condition"}),
    "code as text": _set(("provision", "code"), ["F41.0"]),
    "data without reference": _set(("provision", "data"), [{"meaning": "instance"}]),
    "nested provision as text": _set(("provision", "provision"), "none"),
    "nested provision items": _set(("provision", "provision"), [42]),
    "unknown provision type": _set(("provision", "type"), "allow"),
    "provision as text": _set(("provision",), "everything"),
    "performer as text": _set(("performer",), "the client"),
    "signing date as number": _set(("dateTime",), 20260101),
    "policy as text": _set(("policy",), "42CFRPart2"),
    "policy rule as text": _set(("policyRule",), "42CFRPart2"),
    "patient as text": _set(("patient",), "the client"),
    "scope as text": _set(("scope",), "patient-privacy"),
    "status as number": _set(("status",), 1),
}


@pytest.mark.parametrize("malformation", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_consent_never_permits_and_never_raises(malformation: str, mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-09"]
    consent = copy.deepcopy(_consent(chart, PERMIT_RESEARCH))
    MALFORMED[malformation](consent)
    disclosure = _disclose(chart, [consent], purpose="HRESCH")
    status, rules = _rules(disclosure, chart, "dx-09-panic")
    assert status == "deny" and not rules & RELEASING_RULES
    assert "c-standing" not in {r.id for d in disclosure.decision.resources for r in d.relied_on}


@pytest.mark.parametrize("malformation", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_deny_still_denies(malformation: str, mapped: dict[str, MappedChart]) -> None:
    chart = mapped["cl-09"]
    consent = copy.deepcopy(_consent(chart, DENY_MH))
    MALFORMED[malformation](consent)
    disclosure = _disclose(chart, [consent])
    status, rules = _rules(disclosure, chart, "dx-09-panic")
    assert status == "deny" and "DEC-CONSENT-DENY" in rules
    reasons = {r.rule for r in _assessment(disclosure).reasons}
    assert "CNS-DENIES-ONLY" in reasons and reasons & {"CNS-MALFORMED", "CNS-UNDATED", "CNS-INVALID-SIGNER"}
