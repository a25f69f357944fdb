"""Conditional writes find exactly the resource they mean: the match key is FHIR-escaped and URL-encoded
wherever it becomes a query (the conditional URL, ifNoneExist, the If-None-Exist header, the re-read search).

A value such as MRN "12,34" unescaped is "12" OR "34"; "A&B" is cut to "A" and "A#B" loses "#B" on the wire.
Either would make a conditional update overwrite another client's Patient. FakeFhir reads token values as the
spec says, so these tests see what a real server would do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from adapter.pipeline import MappedChart
from adapter.sync.client import FhirClient
from adapter.sync.partners import Partner
from adapter.sync.plan import Match, conditional_request, entry, escape_search
from adapter.sync.push import Pusher, WriteMode
from adapter.sync.release import Released
from adapter.sync.store import open_store
from tests.sync.conftest import no_wait, partner
from tests.sync.fakefhir import FakeFhir, tokens

MRN = "https://riverbend.example.org/mrn"
NPI = "http://hl7.org/fhir/sid/us-npi"
ID_SYSTEM = "https://riverbend.example.org/fhir/sid/resource-id"
NO_CHART = cast(MappedChart, None)  # the stand-in release below ignores the chart

# (the MRN already at the partner, another client's MRN that unescaped would land on it)
LOOKALIKES = [("12", "12,34"), ("A", "A&B"), ("A", "A#B"), ("A", "A&identifier=x|y")]


def pusher(fake: FakeFhir, engine: Engine, write_mode: WriteMode) -> Pusher:
    p = partner()
    client = FhirClient(p, httpx.Client(transport=fake.transport()), retrying=no_wait(p))
    return Pusher(client, engine, write_mode, "conditional", ID_SYSTEM)


def releasing(resource: dict[str, Any]):  # type: ignore[no-untyped-def]
    def release(_chart: MappedChart, _partner: Partner, _instant: datetime) -> Released:
        return Released([resource])

    return release


def patient(pid: str, mrn: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family}],
        "gender": "female",
    }


def organization(oid: str, npi: str, name: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": oid, "identifier": [{"system": NPI, "value": npi}], "name": name}


def held(fake: FakeFhir, rtype: str) -> list[tuple[str, str, str]]:
    """(identifier value, name, versionId) of every resource of the type the partner holds."""
    out = []
    for (t, _), r in fake.store.items():
        if t == rtype:
            name = r["name"] if isinstance(r["name"], str) else r["name"][0]["family"]
            out.append((r["identifier"][0]["value"], name, r["meta"]["versionId"]))
    return sorted(out)


def test_escape_search_escapes_the_four_characters_of_the_spec() -> None:
    assert escape_search("a|b,c$d\\e") == "a\\|b\\,c\\$d\\\\e"
    assert escape_search("plain-value_1.2") == "plain-value_1.2"


def test_match_query_is_one_escaped_url_encoded_parameter() -> None:
    match = Match("identifier", MRN, "12,34&x=1 #ü")
    assert match.search_value() == f"{MRN}|12\\,34&x=1 #ü"
    query = match.query()
    assert query.startswith("identifier=https://riverbend.example.org/mrn%7C")  # systems stay readable
    assert all(c not in query for c in "&# \\,") and query.isascii()  # one parameter, safe in a header
    assert parse_qs(query) == {"identifier": [match.search_value()]}


_TEXT = st.text(alphabet=st.sampled_from(list("ab1|,$\\&#=+% ?/:ü")), min_size=1, max_size=8)


@given(_TEXT, _TEXT)
def test_every_match_round_trips_through_a_spec_correct_parser(system: str, value: str) -> None:
    query = Match("identifier", system, value).query()
    assert set(parse_qs(query)) == {"identifier"}
    assert tokens(parse_qs(query)["identifier"][0]) == [(system, value)]


def test_conditional_request_carries_the_encoded_match() -> None:
    update = conditional_request(entry(patient("p-2", "12,34", "Wong")), Match("identifier", MRN, "12,34"), {})
    assert update.url == "Patient?identifier=https://riverbend.example.org/mrn%7C12%5C%2C34"
    create = conditional_request(entry(organization("o-2", "A&B", "B")), Match("identifier", NPI, "A&B"), {})
    assert create.method == "POST" and create.if_none_exist == "identifier=http://hl7.org/fhir/sid/us-npi%7CA%26B"


@pytest.mark.parametrize("write_mode", ["transaction", "single"])
@pytest.mark.parametrize(("first", "second"), LOOKALIKES)
def test_conditional_update_never_overwrites_another_clients_patient(
    db_url: str, write_mode: WriteMode, first: str, second: str
) -> None:
    fake = FakeFhir(update_create=False)
    push = pusher(fake, open_store(db_url), write_mode)
    push.push(NO_CHART, releasing(patient("11111111-1111-4111-8111-111111111111", first, "Xavier")), 1)
    report = push.push(NO_CHART, releasing(patient("22222222-2222-4222-8222-222222222222", second, "Young")), 2)
    assert report.sent == 1 and not report.failed and not report.rejected
    assert held(fake, "Patient") == sorted([(first, "Xavier", "1"), (second, "Young", "1")])
    # Sending the second again finds it (and only it): an update of its own copy, still one resource each.
    push.push(NO_CHART, releasing(patient("22222222-2222-4222-8222-222222222222", second, "Young-Ward")), 3)
    assert held(fake, "Patient") == sorted([(first, "Xavier", "1"), (second, "Young-Ward", "2")])


@pytest.mark.parametrize("write_mode", ["transaction", "single"])
@pytest.mark.parametrize(("first", "second"), [*LOOKALIKES, ("1", "Zürich-1")])
def test_conditional_create_is_not_answered_by_another_organization(
    db_url: str, write_mode: WriteMode, first: str, second: str
) -> None:
    """If-None-Exist (a header in single mode, ifNoneExist in a Bundle): a look-alike identifier must not make
    the partner answer with its existing directory entry instead of creating ours; a non-ASCII identifier must
    not break the header."""
    fake = FakeFhir(update_create=False)
    push = pusher(fake, open_store(db_url), write_mode)
    push.push(NO_CHART, releasing(organization("33333333-3333-4333-8333-333333333333", first, "Theirs")), 1)
    report = push.push(NO_CHART, releasing(organization("44444444-4444-4444-8444-444444444444", second, "Ours")), 2)
    assert report.sent == 1 and not report.failed and not report.rejected
    assert held(fake, "Organization") == sorted([(first, "Theirs", "1"), (second, "Ours", "1")])


def test_re_read_finds_only_the_resource_with_the_exact_identifier(db_url: str) -> None:
    """The re-read after an ambiguous failure (read_partner_copy) searches the escaped value: "12" at the
    partner is not taken for "12,34" (which would mark ours sent without sending it)."""
    fake = FakeFhir(update_create=False)
    push = pusher(fake, open_store(db_url), "single")
    push.push(NO_CHART, releasing(patient("11111111-1111-4111-8111-111111111111", "12", "Xavier")), 1)
    ours = entry(patient("22222222-2222-4222-8222-222222222222", "12,34", "Wong"))
    assert push.read_partner_copy(ours) is None
    search = fake.requests[-1]
    assert search.method == "GET"
    assert parse_qs(urlsplit(str(search.url)).query) == {"identifier": [f"{MRN}|12\\,34"]}
    push.push(NO_CHART, releasing(ours.resource), 2)
    found = push.read_partner_copy(ours)
    assert found is not None and found["identifier"][0]["value"] == "12,34"
