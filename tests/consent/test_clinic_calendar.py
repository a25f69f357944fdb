"""Date-only consent bounds are days of the clinic's calendar, whatever offset the disclosure instant is written in
(the sync and the API clock give UTC instants)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from adapter.consent import DisclosureRequest, Identifier, enforce
from adapter.settings import Settings
from adapter.sync.partners import parse_partners
from adapter.sync.release import consent_release
from adapter.terminology.systems import NPI
from tests.consent.harness import NullAudit, clinic, consent, identifier_value, patient_key

THO = "http://terminology.hl7.org/CodeSystem"
ACT = f"{THO}/v3-ActCode"
NORTHFIELD = Identifier(system=NPI, value="1728035910")


def _deny_mental_health_until(chart: Any, end: str) -> dict[str, Any]:
    deny = {
        "type": "deny",
        "period": {"start": "2026-01-01", "end": end},
        "securityLabel": [{"system": ACT, "code": "MH"}],
    }
    return consent(patient_key(chart), deny, id="deny-mh-june", dateTime="2026-01-01T10:00:00-05:00")


def _in_force(at: str, timezone: str | None) -> bool:
    chart = clinic().mapped["cl-16"]
    consent = _deny_mental_health_until(chart, "2026-06-30")
    request = DisclosureRequest(
        recipient_organizations=(NORTHFIELD,),
        purpose="TREAT",
        instant=datetime.fromisoformat(at),
        timezone=timezone,
    )
    disclosure = enforce(chart.bundle, request, [consent], audit=NullAudit())
    (assessment,) = [a for a in disclosure.decision.consents if a.consent.id == "deny-mh-june"]
    return assessment.in_force_hipaa


def test_a_date_only_end_lasts_to_the_end_of_the_clinics_day() -> None:
    # 01:00 UTC on 1 July is still 30 June in New York: the client's deny stands.
    assert _in_force("2026-07-01T01:00:00+00:00", "America/New_York")
    assert _in_force("2026-06-30T21:00:00-04:00", "America/New_York")
    assert not _in_force("2026-07-01T04:00:00+00:00", "America/New_York")  # midnight in New York: over
    # Without a clinic calendar the instant's own offset decides (the engine's default, for callers that pass one).
    assert not _in_force("2026-07-01T01:00:00+00:00", None)


def test_the_sync_release_judges_by_the_clinic_calendar() -> None:
    """The push's instant is UTC (Pusher.push_batch); the release given the clinic's zone still keeps the deny."""
    chart = clinic().mapped["cl-16"]
    consent = _deny_mental_health_until(chart, "2026-06-30")
    with_deny = dataclasses.replace(chart, resources=[*chart.resources, consent])
    partner = parse_partners(
        {
            "partners": [
                {
                    "id": "p",
                    "name": "Northfield",
                    "role": "psychiatry",
                    "base_url": "http://p.test/fhir",
                    "recipient": {"organization_npi": NORTHFIELD.value},
                    "attested": {"treating_relationship": True},
                }
            ]
        },
        "test",
        {},
    )[0]
    at = datetime.fromisoformat("2026-07-01T01:00:00+00:00")

    def mental_health_conditions(timezone: str | None) -> list[str]:
        released = consent_release(NullAudit(), timezone)(with_deny, partner, at).resources
        return [identifier_value(r) for r in released if r["resourceType"] == "Condition"]

    assert "dx-16-mdd" in mental_health_conditions(None)  # judged by the UTC date: the deny had ended
    assert "dx-16-mdd" not in mental_health_conditions(Settings().clinic_timezone)  # 30 June in the clinic


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        DisclosureRequest(
            recipient_organizations=(NORTHFIELD,),
            purpose="TREAT",
            instant=datetime.fromisoformat("2026-07-01T01:00:00+00:00"),
            timezone="Mars/Olympus_Mons",
        )
    with pytest.raises(ValidationError, match="unknown time zone"):
        Settings(clinic_timezone="Mars/Olympus_Mons")
