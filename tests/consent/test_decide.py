"""Step 2, decide: the provision tree to any depth and every provision attribute, on crafted consents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from adapter.consent import Decision, DisclosureRequest, Identifier, decide, label
from adapter.mappings import directory as directory_mapping
from adapter.mappings.context import MappingContext
from adapter.mappings.profiles import RECIPIENT_CLASS_SYSTEM
from adapter.pipeline import MappedChart
from adapter.terminology.systems import NPI
from tests.consent.harness import clinic, consent, identifier_value, key

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
IRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}
NORTHFIELD = Identifier(system=NPI, value="1728035910")
WHEN = datetime.fromisoformat("2026-06-01T10:00:00-04:00")


def northfield_actor(ctx: MappingContext) -> dict[str, Any]:
    return {"role": IRCP, "reference": {"reference": f"Organization/{ctx.id('Organization', 'org-northfield-psych')}"}}


def run(mapped: dict[str, MappedChart], client: str, consents: list[dict[str, Any]], **request: Any) -> Decision:
    """decide() on the client's Bundle plus Northfield's Organization (which the crafted consents name)."""
    c = clinic()
    org = directory_mapping.organization(c.loaded.clinic.directory.organizations["org-northfield-psych"], c.ctx)
    bundle = mapped[client].bundle
    if key(org) not in {key(e["resource"]) for e in bundle["entry"]}:
        bundle = {**bundle, "entry": [*bundle["entry"], {"fullUrl": f"{c.ctx.fhir_base}/{key(org)}", "resource": org}]}
    defaults: dict[str, Any] = {"recipient_organizations": (NORTHFIELD,), "purpose": "TREAT", "instant": WHEN}
    return decide(DisclosureRequest(**(defaults | request)), consents, label(bundle))


def status(decision: Decision, mapped: dict[str, MappedChart], client: str, rtype: str, value: str) -> str:
    resource = next(
        e["resource"]
        for e in mapped[client].bundle["entry"]
        if e["resource"]["resourceType"] == rtype and identifier_value(e["resource"]) == value
    )
    item = decision.of(key(resource))
    assert item is not None
    return item.status


def patient(mapped: dict[str, MappedChart], client: str) -> str:
    return next(
        key(e["resource"]) for e in mapped[client].bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def test_three_levels_most_specific_wins(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """deny everything MH to Northfield, except (permit) DocumentReferences, except (deny) psychotherapy notes."""
    tree = {
        "type": "deny",
        "actor": [northfield_actor(ctx)],
        "securityLabel": [{"system": ACT, "code": "MH"}],
        "provision": [
            {
                "type": "permit",
                "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "QuestionnaireResponse"}],
                "provision": [
                    {"type": "deny", "code": [{"coding": [{"system": "http://loinc.org", "code": "69737-5"}]}]}
                ],
            }
        ],
    }
    decision = run(mapped, "cl-09", [consent(patient(mapped, "cl-09"), tree)])
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "deny"  # root deny
    # The GAD-7 QuestionnaireResponse carries no panel coding (only its canonical), so the depth-3 deny on the
    # panel code does not match it: the depth-2 permit decides.
    assert status(decision, mapped, "cl-09", "QuestionnaireResponse", "asm-09-gad7") == "permit"
    assert status(decision, mapped, "cl-09", "DocumentReference", "note-09-progress") == "permit"  # no MH label


def test_nested_exception_only_inside_its_parent(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """A nested deny is an exception to its parent's permit for Northfield: another recipient is unaffected."""
    tree = {
        "type": "permit",
        "actor": [northfield_actor(ctx)],
        "purpose": [{"system": REASON, "code": "HRESCH"}],
        "provision": [{"type": "deny", "securityLabel": [{"system": ACT, "code": "PSY"}]}],
    }
    c = consent(patient(mapped, "cl-09"), tree)
    research = run(mapped, "cl-09", [c], purpose="HRESCH")
    assert status(research, mapped, "cl-09", "Condition", "dx-09-panic") == "deny"  # PSY: the exception
    assert status(research, mapped, "cl-09", "DocumentReference", "note-09-progress") == "permit"
    other = run(mapped, "cl-09", [c], purpose="HRESCH", recipient_organizations=(Identifier(system=NPI, value="1"),))
    assert status(other, mapped, "cl-09", "DocumentReference", "note-09-progress") == "deny"  # no authorization


@pytest.mark.parametrize(("action", "expected"), [("disclose", "permit"), ("access", "permit"), ("collect", "deny")])
def test_action(action: str, expected: str, mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    tree = {
        "type": "permit",
        "actor": [northfield_actor(ctx)],
        "purpose": [{"system": REASON, "code": "HRESCH"}],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": action}]}],
    }
    decision = run(mapped, "cl-09", [consent(patient(mapped, "cl-09"), tree)], purpose="HRESCH")
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == expected


def test_actor_by_identifier_only(mapped: dict[str, MappedChart]) -> None:
    tree = {
        "type": "permit",
        "actor": [{"role": IRCP, "reference": {"identifier": {"system": NPI, "value": NORTHFIELD.value}}}],
        "purpose": [{"system": REASON, "code": "HRESCH"}],
    }
    decision = run(mapped, "cl-09", [consent(patient(mapped, "cl-09"), tree)], purpose="HRESCH")
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "permit"


def test_unresolvable_actor_never_permits_but_denies(mapped: dict[str, MappedChart]) -> None:
    ghost = {"role": IRCP, "reference": {"reference": "Organization/not-in-the-bundle"}}
    permit = {"type": "permit", "actor": [ghost], "purpose": [{"system": REASON, "code": "HRESCH"}]}
    deny = {"type": "deny", "actor": [ghost]}
    p = patient(mapped, "cl-09")
    assert (
        status(
            run(mapped, "cl-09", [consent(p, permit)], purpose="HRESCH"), mapped, "cl-09", "Condition", "dx-09-panic"
        )
        == "deny"
    )
    assert status(run(mapped, "cl-09", [consent(p, deny)]), mapped, "cl-09", "Condition", "dx-09-panic") == "deny"


def test_data_period_and_data_reference(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    p = patient(mapped, "cl-09")
    condition = next(
        key(e["resource"]) for e in mapped["cl-09"].bundle["entry"] if identifier_value(e["resource"]) == "dx-09-panic"
    )
    instance = {
        "type": "permit",
        "actor": [northfield_actor(ctx)],
        "purpose": [{"system": REASON, "code": "HRESCH"}],
        "data": [{"meaning": "instance", "reference": {"reference": condition}}],
    }
    decision = run(mapped, "cl-09", [consent(p, instance)], purpose="HRESCH")
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "permit"
    assert status(decision, mapped, "cl-09", "DocumentReference", "note-09-progress") == "deny"
    old_data = {
        "type": "permit",
        "actor": [northfield_actor(ctx)],
        "purpose": [{"system": REASON, "code": "HRESCH"}],
        "dataPeriod": {"start": "2020-01-01", "end": "2020-12-31"},
    }
    decision = run(mapped, "cl-09", [consent(p, old_data)], purpose="HRESCH")
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "deny"


def test_untyped_provision_is_a_deny(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    tree = {"actor": [northfield_actor(ctx)], "securityLabel": [{"system": ACT, "code": "MH"}]}
    decision = run(mapped, "cl-09", [consent(patient(mapped, "cl-09"), tree)])
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "deny"


def test_treating_providers_class_needs_attestation_and_treatment(mapped: dict[str, MappedChart]) -> None:
    tpo = next(
        e["resource"] for e in mapped["cl-02"].bundle["entry"] if identifier_value(e["resource"]) == "cns-02-tpo"
    )
    root = tpo["provision"]
    assert root["actor"][0]["reference"]["identifier"]["system"] == RECIPIENT_CLASS_SYSTEM
    when = datetime.fromisoformat("2026-01-10T10:00:00-05:00")
    cases = [("TREAT", True, "permit"), ("TREAT", False, "deny"), ("HPAYMT", True, "deny")]
    for purpose, treating, expected in cases:
        decision = run(mapped, "cl-02", [tpo], purpose=purpose, treating_relationship=treating, instant=when)
        assert status(decision, mapped, "cl-02", "Condition", "dx-02-oud") == expected, (purpose, treating)


def test_part2_data_needs_a_part2_consent(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """A HIPAA authorization naming the recipient and purpose does not meet 42 CFR 2.31."""
    tree = {
        "type": "permit",
        "actor": [northfield_actor(ctx)],
        "purpose": [{"system": REASON, "code": "TREAT"}],
        "securityLabel": [{"system": ACT, "code": "SUD"}],
    }
    when = datetime.fromisoformat("2026-01-10T10:00:00-05:00")
    hipaa = run(mapped, "cl-02", [consent(patient(mapped, "cl-02"), tree)], instant=when)
    item = hipaa.of(next(k for k in (d.resource for d in hipaa.resources) if k.startswith("Condition/")))
    assert item is not None and item.status == "deny" and "PT2-NOT-PART2-CONSENT" in item.rules
    part2 = run(mapped, "cl-02", [consent(patient(mapped, "cl-02"), tree, part2=True)], instant=when)
    assert status(part2, mapped, "cl-02", "Condition", "dx-02-oud") == "permit"


def test_consent_of_another_patient_or_scope_is_ignored(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    tree = {"type": "deny", "actor": [northfield_actor(ctx)]}
    other = consent("Patient/someone-else", tree)
    research = consent(patient(mapped, "cl-09"), tree, scope={"coding": [{"code": "research"}]})
    decision = run(mapped, "cl-09", [other, research])
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "permit"
    rules = {r.rule for a in decision.consents for r in a.reasons}
    assert {"CNS-OTHER-PATIENT", "CNS-SCOPE"} <= rules


# --- several values in one attribute -----------------------------------------------------------------------
def test_a_permit_listing_several_labels_needs_them_all(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """A Part 2 permit for alcohol-use data of the program (42CFRPart2 + ETHUD) does not release its opioid
    diagnosis (42CFRPart2, SUD, OPIOIDUD)."""
    when = datetime.fromisoformat("2026-01-10T10:00:00-05:00")
    p = patient(mapped, "cl-02")

    def permit(*labels: str) -> dict[str, Any]:
        return {
            "type": "permit",
            "actor": [northfield_actor(ctx)],
            "purpose": [{"system": REASON, "code": "TREAT"}],
            "securityLabel": [{"system": ACT, "code": c} for c in labels],
        }

    alcohol = run(mapped, "cl-02", [consent(p, permit("42CFRPart2", "ETHUD"), part2=True)], instant=when)
    assert status(alcohol, mapped, "cl-02", "Condition", "dx-02-oud") == "deny"
    sud = run(mapped, "cl-02", [consent(p, permit("42CFRPart2", "SUD"), part2=True)], instant=when)
    assert status(sud, mapped, "cl-02", "Condition", "dx-02-oud") == "permit"  # both labels cover it


def test_a_deny_listing_several_labels_denies_any_of_them(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """The clinic's consent form lists denied categories as the labels of one deny: reading them as "all" would
    narrow what the client denied."""
    p = patient(mapped, "cl-09")
    deny = {"type": "deny", "actor": [northfield_actor(ctx)], "securityLabel": [{"system": ACT, "code": "HIV"}]}
    assert status(run(mapped, "cl-09", [consent(p, deny)]), mapped, "cl-09", "Condition", "dx-09-panic") == "permit"
    deny["securityLabel"] = [{"system": ACT, "code": "HIV"}, {"system": ACT, "code": "MH"}]
    assert status(run(mapped, "cl-09", [consent(p, deny)]), mapped, "cl-09", "Condition", "dx-09-panic") == "deny"


def test_classes_and_codes_match_on_any_one(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """R4: class "Multiple types are or'ed together"; code "If this code is found in an instance"."""
    p = patient(mapped, "cl-09")
    base = {"type": "permit", "actor": [northfield_actor(ctx)], "purpose": [{"system": REASON, "code": "HRESCH"}]}
    types = "http://hl7.org/fhir/resource-types"
    by_class = base | {"class": [{"system": types, "code": "Observation"}, {"system": types, "code": "Condition"}]}
    decision = run(mapped, "cl-09", [consent(p, by_class)], purpose="HRESCH")
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "permit"
    assert status(decision, mapped, "cl-09", "DocumentReference", "note-09-progress") == "deny"
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    by_code = base | {
        "code": [{"coding": [{"system": icd, "code": "F32.9"}]}, {"coding": [{"system": icd, "code": "F41.0"}]}]
    }
    decision = run(mapped, "cl-09", [consent(p, by_code)], purpose="HRESCH")
    assert status(decision, mapped, "cl-09", "Condition", "dx-09-panic") == "permit"


# --- authoredby ----------------------------------------------------------------------------------------------
def _practitioner(mapped: dict[str, MappedChart], client: str, npi: str) -> str:
    return next(
        key(e["resource"])
        for e in mapped[client].bundle["entry"]
        if e["resource"]["resourceType"] == "Practitioner" and identifier_value(e["resource"]) == npi
    )


def test_authoredby_covers_every_authorship_element(mapped: dict[str, MappedChart]) -> None:
    """A deny of what Mr. Castillo authored withholds the observations he performed, the answers he recorded,
    the goals he set and the notes he wrote; what merely names him as the requested performer is not his."""
    castillo = _practitioner(mapped, "cl-16", "1573092842")
    deny = {"type": "deny", "data": [{"meaning": "authoredby", "reference": {"reference": castillo}}]}
    decision = run(
        mapped,
        "cl-16",
        [consent(patient(mapped, "cl-16"), deny)],
        instant=datetime.fromisoformat("2026-10-26T10:00:00-04:00"),
    )
    labeled = label(mapped["cl-16"].bundle)
    observed = [
        n.key
        for n in labeled.graph
        if n.resource_type == "Observation"
        and any(r.path == "Observation.performer" and r.target == castillo for r in n.references)
        and not labeled.labels[n.key].part2
    ]
    assert observed
    for k in observed:
        item = decision.of(k)
        assert item is not None and item.status == "deny" and "DEC-CONSENT-DENY" in item.rules, k
    for rtype, value in (("QuestionnaireResponse", "asm-16-phq9"), ("DocumentReference", "note-16-tue-progress")):
        assert status(decision, mapped, "cl-16", rtype, value) == "deny"
    assert status(decision, mapped, "cl-16", "Condition", "dx-16-mdd") == "permit"  # recorded by Dr. Okafor


def test_authoredby_through_a_provenance(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """A Provenance whose author agent is the practitioner makes its targets authored by them; an agent with no
    type cannot be told apart (a deny applies, a permit does not)."""
    chart = mapped["cl-09"]
    panic = next(key(r) for r in chart.resources if identifier_value(r) == "dx-09-panic")
    author = _practitioner(mapped, "cl-16", "1573092842")  # not the recorder of the diagnosis
    practitioner = next(e for e in mapped["cl-16"].bundle["entry"] if key(e["resource"]) == author)

    def with_provenance(agent_type: dict[str, Any] | None) -> dict[str, Any]:
        agent: dict[str, Any] = {"who": {"reference": author}}
        if agent_type is not None:
            agent["type"] = agent_type
        provenance = {
            "resourceType": "Provenance",
            "id": "prov-authored",
            "target": [{"reference": panic}],
            "recorded": "2026-01-01T10:00:00-05:00",
            "agent": [agent],
        }
        entries = [
            *chart.bundle["entry"],
            practitioner,
            {"fullUrl": f"{ctx.fhir_base}/Provenance/prov-authored", "resource": provenance},
        ]
        return {**chart.bundle, "entry": entries}

    p = patient(mapped, "cl-09")
    data = [{"meaning": "authoredby", "reference": {"reference": author}}]
    deny = consent(p, {"type": "deny", "data": data})
    permit = consent(
        p,
        {
            "type": "permit",
            "actor": [{"role": IRCP, "reference": {"identifier": {"system": NPI, "value": NORTHFIELD.value}}}],
            "purpose": [{"system": REASON, "code": "HRESCH"}],
            "data": data,
        },
    )
    author_type = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]
    }
    request = DisclosureRequest(recipient_organizations=(NORTHFIELD,), purpose="TREAT", instant=WHEN)
    research = request.model_copy(update={"purpose": "HRESCH"})
    cases = [(author_type, "deny", "permit"), (None, "deny", "deny"), ({"text": "Client agreement"}, "permit", "deny")]
    for agent_type, under_deny, under_permit in cases:
        labeled = label(with_provenance(agent_type))
        denied = decide(request, [deny], labeled).of(panic)
        permitted = decide(research, [permit], labeled).of(panic)
        assert denied is not None and denied.status == under_deny, agent_type
        assert permitted is not None and permitted.status == under_permit, agent_type


def test_labels_of_one_kind_in_a_permit_are_alternatives(mapped: dict[str, MappedChart], ctx: MappingContext) -> None:
    """A consent form's permitted categories (mental health, substance use) become the sensitivity labels of one
    permit: data in either category is released, not only data in both."""
    when = datetime.fromisoformat("2026-01-10T10:00:00-05:00")
    p = patient(mapped, "cl-02")
    permit = {
        "type": "permit",
        "actor": [northfield_actor(ctx)],
        "purpose": [{"system": REASON, "code": "TREAT"}],
        "securityLabel": [{"system": ACT, "code": "MH"}, {"system": ACT, "code": "OPIOIDUD"}],
    }
    decision = run(mapped, "cl-02", [consent(p, permit, part2=True)], instant=when)
    assert status(decision, mapped, "cl-02", "Condition", "dx-02-oud") == "permit"  # OPIOIDUD, not MH
    permit["securityLabel"] = [*permit["securityLabel"], {"system": ACT, "code": "42CFRPart2"}]
    decision = run(mapped, "cl-02", [consent(p, permit, part2=True)], instant=when)
    assert status(decision, mapped, "cl-02", "Condition", "dx-02-oud") == "permit"  # and Part 2: both kinds hold
    permit["securityLabel"] = [{"system": ACT, "code": "MH"}, {"system": ACT, "code": "42CFRPart2"}]
    decision = run(mapped, "cl-02", [consent(p, permit, part2=True)], instant=when)
    assert status(decision, mapped, "cl-02", "Condition", "dx-02-oud") == "deny"  # Part 2, but not mental health
