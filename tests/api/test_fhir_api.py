"""The partner-facing FHIR API in process: metadata, read, search with paging and _include, XML, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapter import fhir
from adapter.api import create_app
from adapter.fhirxml.reader import from_xml
from adapter.partner_api.searchparams import SEARCH
from adapter.services import Services
from adapter.sync.release import consent_release
from tests.api.conftest import NOW, TestClient, TokenFactory, bearer

PCP = "maple-street-primary-care"
PSYCH = "northfield-psychiatry"


class NullAudit:
    def record(self, records: object) -> None:
        return None


def expected_release(services: Services, partner_id: str, purpose: str, client_id: str) -> dict[str, dict[str, Any]]:
    """What a sync to that partner sends of that client (consent_release, narrowed to the partner's push types),
    computed here without the API."""
    chart = services.mapped_chart(client_id)
    assert chart is not None
    partner = services.partners[partner_id]
    release = consent_release(NullAudit(), services.settings.clinic_timezone)  # as the sync worker builds it
    released = release(chart, partner.model_copy(update={"purpose_of_use": purpose}), NOW)
    return {f"{r['resourceType']}/{r['id']}": r for r in released.resources if partner.pushes(r["resourceType"])}


def patient_id(services: Services, client_id: str) -> str:
    chart = services.mapped_chart(client_id)
    assert chart is not None
    return str(next(r["id"] for r in chart.resources if r["resourceType"] == "Patient"))


def key(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def get(client: TestClient, secret: str, url: str, **headers: str) -> Any:
    return client.get(url, headers={**bearer(secret), **headers})


def pages(client: TestClient, secret: str, url: str, **headers: str) -> Iterator[dict[str, Any]]:
    """Every page of a search, following the next links."""
    next_url: str | None = url
    while next_url:
        response = get(client, secret, next_url, **headers)
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        next_url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)


def entries(page: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in page.get("entry", []) if e["search"]["mode"] == mode]


def outcome_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


@pytest.fixture
def pcp(token: TokenFactory) -> str:
    return token("partner", PCP)


def test_metadata_announces_what_the_server_does(client: TestClient, pcp: str) -> None:
    response = get(client, pcp, "/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    fhir.reference_validate(statement)
    assert (statement["fhirVersion"], statement["kind"], statement["status"]) == ("4.0.1", "instance", "active")
    assert {"json", "xml"} <= set(statement["format"])
    rest = statement["rest"][0]
    assert "Bearer" in rest["security"]["service"][0]["text"]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == set(SEARCH)
    for entry in resources.values():
        assert [i["code"] for i in entry["interaction"]] == ["read", "search-type"]
        assert "_id" in {p["name"] for p in entry["searchParam"]}
    assert {"patient", "subject"} <= {p["name"] for p in resources["Observation"]["searchParam"]}
    includes = {i for r in resources.values() for i in r.get("searchInclude", [])}
    assert {"Observation:has-member", "Observation:derived-from", "CarePlan:goal", "Task:focus"} <= includes
    assert {"ServiceRequest:based-on", "Observation:patient", "Condition:subject"} <= includes
    xml = get(client, pcp, "/fhir/metadata", Accept="application/fhir+xml")
    assert xml.headers["content-type"].startswith("application/fhir+xml")
    assert from_xml(xml.content) == fhir.loads(response.content)


def test_read_returns_the_released_resource(client: TestClient, services: Services, pcp: str) -> None:
    released = expected_release(services, PCP, "TREAT", "cl-04")
    for ref in [k for k in released if k.startswith(("Patient/", "Observation/", "Practitioner/"))][:6]:
        response = get(client, pcp, f"/fhir/{ref}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        assert response.json() == fhir.loads(fhir.dumps(released[ref]))


def test_paging_walks_every_released_resource_of_the_type_once(
    client: TestClient, services: Services, pcp: str
) -> None:
    released = expected_release(services, PCP, "TREAT", "cl-08")
    observations = {k for k in released if k.startswith("Observation/")}
    assert len(observations) > 20
    seen: list[str] = []
    walked = list(pages(client, pcp, f"/fhir/Observation?patient={patient_id(services, 'cl-08')}&_count=7"))
    for page in walked:
        assert page["type"] == "searchset" and page["total"] == len(observations)
        matches = entries(page, "match")
        assert 0 < len(matches) <= 7
        seen += [key(r) for r in matches]
        assert all(r == fhir.loads(fhir.dumps(released[key(r)])) for r in matches)
    assert len(walked) == -(-len(observations) // 7)
    assert len(seen) == len(set(seen)) and set(seen) == observations
    assert "_page=" in walked[1]["link"][0]["url"]  # a later page's self link is its own token


def test_subject_and_id_select_like_patient(client: TestClient, services: Services, pcp: str) -> None:
    pid = patient_id(services, "cl-05")
    by_patient = get(client, pcp, f"/fhir/Condition?patient={pid}").json()
    by_subject = get(client, pcp, f"/fhir/Condition?subject=Patient/{pid}").json()
    assert [key(r) for r in entries(by_patient, "match")] == [key(r) for r in entries(by_subject, "match")]
    assert by_patient["total"] > 0
    (patient,) = entries(get(client, pcp, f"/fhir/Patient?_id={pid}").json(), "match")
    assert patient["id"] == pid
    first, *_ = entries(by_patient, "match")
    one = get(client, pcp, f"/fhir/Condition?_id={first['id']},not-an-id&patient={pid}").json()
    assert [key(r) for r in entries(one, "match")] == [key(first)]
    only_total = get(client, pcp, f"/fhir/Condition?patient={pid}&_count=0").json()
    assert only_total["total"] == by_patient["total"] and "entry" not in only_total
    assert [link["relation"] for link in only_total["link"]] == ["self"]
    other = patient_id(services, "cl-06")
    assert get(client, pcp, f"/fhir/Condition?patient={pid}&patient={other}").json()["total"] == 0


def _include_case(
    client: TestClient, services: Services, secret: str, client_id: str, rtype: str, param: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    url = f"/fhir/{rtype}?patient={patient_id(services, client_id)}&_include={rtype}:{param}&_count=200"
    response = get(client, secret, url)
    assert response.status_code == 200, response.text
    return response.json(), expected_release(services, PCP, "TREAT", client_id)


@pytest.mark.parametrize(
    ("client_id", "rtype", "param", "target"),
    [
        ("cl-04", "Observation", "derived-from", "QuestionnaireResponse"),
        ("cl-04", "Observation", "has-member", "Observation"),
        ("cl-08", "CarePlan", "goal", "Goal"),
        ("cl-06", "Task", "focus", "ServiceRequest"),
        ("cl-08", "ServiceRequest", "based-on", "CarePlan"),
    ],
)
def test_include_adds_the_released_targets(
    client: TestClient, services: Services, pcp: str, client_id: str, rtype: str, param: str, target: str
) -> None:
    bundle, released = _include_case(client, services, pcp, client_id, rtype, param)
    matches, included = entries(bundle, "match"), entries(bundle, "include")
    refs = {
        str(node["reference"])
        for r in matches
        for node in _references(r, SEARCH[rtype][param].paths[0].split("."))
        if str(node["reference"]).startswith(f"{target}/")
    }
    assert refs, "the fixture should exercise this include"
    wanted = (refs & set(released)) - {key(r) for r in matches}
    assert {key(r) for r in included} == wanted
    assert all(r == fhir.loads(fhir.dumps(released[key(r)])) for r in included)


def _references(node: Any, steps: list[str]) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _references(item, steps)
    elif not steps:
        yield node
    elif isinstance(node, dict) and steps[0] in node:
        yield from _references(node[steps[0]], steps[1:])


def test_xml_parses_back_to_the_json(client: TestClient, services: Services, pcp: str) -> None:
    url = f"/fhir/Observation?patient={patient_id(services, 'cl-13')}&_include=Observation:derived-from"
    as_json = get(client, pcp, url)
    as_xml = get(client, pcp, url + "&_format=xml")
    assert as_xml.headers["content-type"].startswith("application/fhir+xml")
    bundle = from_xml(as_xml.content)
    assert bundle["link"][0]["url"].endswith("&_format=xml")  # links keep the requested format
    del bundle["link"]
    expected = fhir.loads(as_json.content)
    del expected["link"]
    assert bundle == expected and bundle["total"] > 0
    first = entries(expected, "match")[0]
    read = get(client, pcp, f"/fhir/Observation/{first['id']}", Accept="application/fhir+xml")
    assert from_xml(read.content) == first


@pytest.mark.parametrize(
    "query",
    [
        "Observation?patient={pid}&code=44249-1",  # a parameter the server does not implement
        "Observation?patient:Patient={pid}",  # a modifier
        "Observation?patient={pid}&_include=Observation:nonsense",
        "Observation?patient={pid}&_include=CarePlan:goal",  # another type's include
        "Observation?patient={pid}&_include:iterate=Observation:has-member",
        "Observation?patient={pid}&_count=-1",
        "Observation?patient={pid}&_count=" + "9" * 5000,
        "Observation?patient={pid}&_sort=date",
        "Observation?patient=Patient/",  # not a reference
        "Observation?patient={pid}&_id=not%20an%20id",
        "Observation",  # no criterion: never a scan of every client
        "Practitioner?name=Okafor",
        "Observation?patient={pid}&_page=abc",
    ],
)
def test_unsupported_requests_are_400_outcomes(client: TestClient, services: Services, pcp: str, query: str) -> None:
    response = get(client, pcp, "/fhir/" + query.format(pid=patient_id(services, "cl-04")))
    body = outcome_of(response, 400)
    assert body["issue"][0]["code"] == "invalid"


def test_unknown_ids_and_types_are_404_outcomes(client: TestClient, services: Services, pcp: str) -> None:
    for path in ("Observation/no-such-id", "Patient/3f1c1d1e-0000-5000-8000-000000000000", "Basic/x", "Basic"):
        assert outcome_of(get(client, pcp, f"/fhir/{path}"), 404)["issue"][0]["code"] == "not-found"
    assert outcome_of(get(client, pcp, "/fhir/Basic?patient=x"), 404)


def test_page_tokens_work_only_for_their_view(client: TestClient, services: Services, token: TokenFactory) -> None:
    pcp_treat = token("partner", PCP, ["TREAT", "HOPERAT"])
    url = f"/fhir/Observation?patient={patient_id(services, 'cl-08')}&_count=5"
    first = get(client, pcp_treat, url).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert get(client, pcp_treat, next_url).status_code == 200
    assert get(client, pcp_treat, next_url).json() == get(client, pcp_treat, next_url).json()  # stable
    other_partner = token("partner", PSYCH)
    outcome_of(get(client, other_partner, next_url), 400)
    outcome_of(get(client, pcp_treat, next_url, **{"X-Purpose-Of-Use": "HOPERAT"}), 400)
    payload, _, signature = next_url.partition("_page=")[2].partition(".")
    outcome_of(get(client, pcp_treat, next_url.replace(payload, payload[:-2] + "AA")), 400)
    outcome_of(get(client, pcp_treat, next_url.replace(signature, signature[::-1])), 400)
    outcome_of(get(client, pcp_treat, next_url.replace("/Observation?", "/Condition?")), 400)


def test_page_tokens_survive_a_restart_and_work_across_processes(
    client: TestClient, services: Services, token: TokenFactory
) -> None:
    pcp_treat = token("partner", PCP, ["TREAT"])
    first = get(client, pcp_treat, f"/fhir/Observation?patient={patient_id(services, 'cl-08')}&_count=5").json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    # Another app on the same database (a restarted server, or a second worker) honours the link.
    other = TestClient(create_app(services))
    assert get(other, pcp_treat, next_url).json() == get(client, pcp_treat, next_url).json()


def test_only_partner_tokens_search(client: TestClient, services: Services, token: TokenFactory) -> None:
    staff = token("clinic-admin")
    pid = patient_id(services, "cl-04")
    assert outcome_of(get(client, staff, f"/fhir/Patient/{pid}"), 403)
    assert outcome_of(get(client, staff, f"/fhir/Patient?_id={pid}"), 403)
    assert get(client, staff, "/fhir/metadata").status_code == 200
    assert outcome_of(client.get("/fhir/metadata"), 401)
