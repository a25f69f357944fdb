"""The partner's credentials go only to the partner's server: `next` links elsewhere are not followed
(adapter/sync/client.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adapter.sync.auth import BearerAuthenticator
from adapter.sync.client import FhirClient, under_base
from adapter.sync.pull import cursor, pull
from adapter.sync.pulled import ClinicIndex
from adapter.sync.retry import Failure
from adapter.sync.store import open_store
from tests.sync.conftest import no_wait, partner

BASE = "http://fake.test/fhir"


def _task() -> dict[str, object]:
    return {
        "resourceType": "Task",
        "id": "t1",
        "meta": {"versionId": "1", "lastUpdated": "2026-03-01T10:00:00Z"},
        "status": "accepted",
        "intent": "order",
    }


def test_a_next_link_to_another_host_is_not_followed_and_the_pass_reports_it(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        link = [{"relation": "next", "url": "https://collector.attacker.example/page2?_getpages=x"}]
        body = {"resourceType": "Bundle", "type": "searchset", "link": link, "entry": [{"resource": _task()}]}
        return httpx.Response(200, json=body)

    p = partner(pull=["Task"], auth={"type": "bearer", "token_env": "PSYCH_TOKEN"})
    c = FhirClient(
        p, httpx.Client(transport=httpx.MockTransport(handle)), BearerAuthenticator("s3cr3t"), retrying=no_wait(p)
    )
    engine = open_store(f"sqlite:///{tmp_path / 'sync.db'}")
    report = pull(c, engine, ClinicIndex({}, {}, {}, f"{BASE}/sid/referral-task"))
    assert seen == [("fake.test", "Bearer s3cr3t")]
    assert report.failures == [
        "Task: paging stopped: the next link points outside the partner's base URL (https://collector.attacker.example)"
    ]
    assert report.fetched == {"Task": 1}  # the first page is kept
    assert cursor(engine, "psych", "Task") is None  # the search did not complete: it is repeated


def test_a_next_link_on_the_partners_server_is_followed() -> None:
    urls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        link = [{"relation": "next", "url": f"{BASE}?_getpages=abc&_getpagesoffset=1"}] if len(urls) == 1 else []
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "link": link})

    p = partner()
    c = FhirClient(p, httpx.Client(transport=httpx.MockTransport(handle)), retrying=no_wait(p))
    pages = list(c.search_pages("Task", {"_count": "1"}))
    assert len(pages) == 2 and not any(isinstance(x, Failure) for x in pages)
    assert urls[1] == f"{BASE}?_getpages=abc&_getpagesoffset=1"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (f"{BASE}/Task?_page=2", True),
        (f"{BASE}?_getpages=x", True),
        ("http://FAKE.test:80/fhir/Task", True),  # the default port, host case
        ("https://fake.test/fhir/Task", False),  # another scheme
        ("http://fake.test:8080/fhir/Task", False),  # another port
        ("http://fake.test.evil.example/fhir/Task", False),
        ("http://fake.test/fhirx/Task", False),  # not under the base path
        ("http://fake.test/admin", False),
        ("http://fake.test/fhir/../admin", False),
        ("http://fake.test/fhir/%2e%2e/admin", False),
        ("http://user:pw@fake.test/fhir/Task", False),
    ],
)
def test_under_base(url: str, ok: bool) -> None:
    assert under_base(url, BASE) is ok


def test_no_request_leaves_for_an_absolute_url_elsewhere() -> None:
    sent: list[httpx.Request] = []
    p = partner()
    c = FhirClient(p, httpx.Client(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))))
    answer = c.once("GET", "https://elsewhere.example/fhir/Patient/1")
    assert isinstance(answer, Failure) and answer.kind == "permanent"
    assert answer.reason == "refused a URL outside the partner's base URL (https://elsewhere.example)"
    assert sent == []


def test_a_next_link_naming_the_server_otherwise_is_followed_on_the_partners_base() -> None:
    """Servers build links from their own name (localhost for 127.0.0.1, an internal name behind a proxy): a link
    under the base path goes to the configured server, with the credentials, and nowhere else."""
    seen: list[tuple[str, str | None]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        link = (
            [{"relation": "next", "url": "http://localhost:8080/fhir?_getpages=abc&_count=1"}] if len(seen) == 1 else []
        )
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "link": link})

    p = partner(auth={"type": "bearer", "token_env": "PSYCH_TOKEN"})
    c = FhirClient(
        p, httpx.Client(transport=httpx.MockTransport(handle)), BearerAuthenticator("s3cr3t"), retrying=no_wait(p)
    )
    pages = list(c.search_pages("Task", {"_count": "1"}))
    assert not any(isinstance(x, Failure) for x in pages) and len(pages) == 2
    assert seen[1] == (f"{BASE}?_getpages=abc&_count=1", "Bearer s3cr3t")


@pytest.mark.parametrize(
    ("url", "moved"),
    [
        ("http://localhost:8080/fhir?_getpages=x", f"{BASE}?_getpages=x"),
        ("https://internal.example/fhir/Task?_page=2", f"{BASE}/Task?_page=2"),
        ("https://collector.attacker.example/page2?_getpages=x", None),  # not a path of the base
        ("http://localhost/fhir/../admin", None),
        ("http://user:pw@localhost/fhir/Task", None),
    ],
)
def test_on_base(url: str, moved: str | None) -> None:
    from adapter.sync.client import on_base

    assert on_base(url, BASE) == moved
