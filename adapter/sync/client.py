"""The FHIR client the sync uses: one long-lived httpx client per process (STYLE habit 7), per-partner auth,
rate limit and timeouts; answers come back as values (:class:`Reply` or :class:`Failure`), never as raised
HTTP errors.

Building an httpx client costs ~18 ms (TLS context; shared/reference/performance.md §3), so
:func:`make_http_client` is called once and the client is shared by every partner; tests inject an
``httpx.MockTransport``.

Credentials go only to the partner's own server: a URL the partner hands back (a search's `next` link) is
followed only on the partner's base URL. A link whose path is under the base path but that names another host
(servers build links from their own idea of their name: localhost for 127.0.0.1, an internal name behind a
proxy) is followed on the partner's configured server (:func:`on_base`); any other is refused, and no request,
so no credential, leaves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import Retrying

from adapter import __version__
from adapter.fhir import loads
from adapter.sync.auth import Authenticator, NoAuthenticator
from adapter.sync.partners import Partner
from adapter.sync.ratelimit import RateLimiter
from adapter.sync.retry import Failure, classify, retry_policy

FHIR_JSON = "application/fhir+json"
BASE_HEADERS = {"Accept": FHIR_JSON, "User-Agent": f"bh-fhir-adapter/{__version__}"}
MAX_PAGES = 100_000  # a guard against a server whose next links loop


def make_http_client(transport: httpx.BaseTransport | None = None, max_connections: int = 20) -> httpx.Client:
    """The process's one HTTP client. Timeouts are set per request from each partner's settings."""
    return httpx.Client(
        transport=transport,
        headers=BASE_HEADERS,
        timeout=httpx.Timeout(30.0, connect=5.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,  # a redirected write is a misconfigured base URL: surface it, do not follow it
    )


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON (decimals as Decimal), or None for an empty body

    def resource(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


Sent = Reply | Failure


class FhirClient:
    def __init__(
        self,
        partner: Partner,
        http: httpx.Client,
        auth: Authenticator | None = None,
        *,
        limiter: RateLimiter | None = None,
        retrying: Callable[[], Retrying] | None = None,
    ) -> None:
        self.partner = partner
        self.base_url = partner.base_url
        self.http = http
        self.auth = auth or NoAuthenticator()
        self.limiter = limiter or RateLimiter(partner.rate_limit.requests_per_second, partner.rate_limit.burst)
        self.retrying = retrying or (lambda: retry_policy(partner.retry))
        t = partner.timeouts
        self.timeout = httpx.Timeout(connect=t.connect_s, read=t.read_s, write=t.write_s, pool=t.pool_s)

    def url(self, path: str) -> str:
        return path if _absolute(path) else f"{self.base_url}/{path.lstrip('/')}"

    def once(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Sent:
        """One request (a second one only after a 401 dropped cached credentials); never retried otherwise.
        An absolute URL outside the partner's base URL is refused without a request: it would carry the
        partner's credentials to another server."""
        if _absolute(path) and not under_base(path, self.base_url):
            return Failure("permanent", f"refused a URL outside the partner's base URL ({_origin(path)})")
        for renewed in (False, True):
            auth = self.auth.headers(self.http)
            if isinstance(auth, Failure):
                return auth
            self.limiter.acquire()
            request_headers = {**auth, **(headers or {})}
            if content is not None:
                request_headers.setdefault("Content-Type", FHIR_JSON)
            try:
                response = self.http.request(
                    method,
                    self.url(path),
                    content=content,
                    params=params,
                    headers=request_headers,
                    timeout=self.timeout,
                )
            except httpx.HTTPError as exc:
                failure = classify(exc)
                assert failure is not None  # noqa: S101 - classify never returns None for an exception
                return failure
            failure = classify(response, time.time())
            if failure is None:
                return Reply(response.status_code, response.headers, _json(response.content))
            if failure.kind == "auth" and response.status_code == 401 and not renewed:
                self.auth.invalidate()
                continue
            return failure
        raise AssertionError("unreachable")  # pragma: no cover

    def call(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Sent:
        """`once` under the retry policy: only for requests that are safe to repeat (reads, searches, PUTs)."""
        result: Sent = self.retrying()(self.once, method, path, content=content, params=params, headers=headers)
        return result

    def capabilities(self) -> Sent:
        return self.call("GET", "metadata")

    def read(self, resource_type: str, resource_id: str) -> Sent:
        return self.call("GET", f"{resource_type}/{resource_id}")

    def search_pages(
        self, resource_type: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> Iterator[Sent]:
        """Each searchset page, following `next` links; stops after a Failure (yielded) or the last page.
        A `next` link outside the partner's base URL is not followed: a permanent Failure says so."""
        url: str | None = resource_type
        query: Mapping[str, str] | None = params
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page = self.call("GET", url, params=query, headers=headers)
            yield page
            if isinstance(page, Failure):
                return
            url = next_link(page.resource())
            if url is not None and _absolute(url) and not under_base(url, self.base_url):
                rebased = on_base(url, self.base_url)
                if rebased is None:
                    yield Failure(
                        "permanent",
                        f"paging stopped: the next link points outside the partner's base URL ({_origin(url)})",
                    )
                    return
                url = rebased
            query = None  # a next link carries the whole query
        yield Failure("permanent", f"more than {MAX_PAGES} pages: the server's next links loop")


def next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link", []) or []:
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def under_base(url: str, base_url: str) -> bool:
    """True when `url` has the scheme, host and port of `base_url` and its path is the base path or under it
    (no `..` segment, encoded or not, to climb out of it)."""
    try:
        target, base = httpx.URL(url), httpx.URL(base_url)
    except httpx.InvalidURL:
        return False
    if (target.scheme, target.host.lower(), target.port) != (base.scheme, base.host.lower(), base.port):
        return False
    if target.userinfo:
        return False  # credentials in a link are not the partner's configuration
    segments = target.path.split("/")
    if any(s in (".", "..") for s in segments):
        return False
    base_path = base.path.rstrip("/")
    return target.path == base_path or target.path.startswith(base_path + "/")


def on_base(url: str, base_url: str) -> str | None:
    """`url` moved onto the partner's scheme, host and port when its path is under the base path (a server that
    names itself otherwise); None when it is not a path of the partner's FHIR base at all."""
    try:
        target, base = httpx.URL(url), httpx.URL(base_url)
    except httpx.InvalidURL:
        return None
    moved = str(base.copy_with(path=target.path, query=target.query or None, fragment=None))
    return moved if not target.userinfo and under_base(moved, base_url) else None


def _absolute(path: str) -> bool:
    return path.lower().startswith(("http://", "https://"))


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, for a message (never its path or query, which may carry search values)."""
    try:
        u = httpx.URL(url)
    except httpx.InvalidURL:
        return "an unreadable URL"
    return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")


def _json(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return loads(content)
    except ValueError:
        return None
