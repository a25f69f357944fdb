"""classify() sorts failures before tenacity sees them; the policy honours Retry-After and gives up cleanly."""

from __future__ import annotations

import httpx
import pytest
from tenacity import wait_none

from adapter.fhir import dumps
from adapter.sync.partners import Retry
from adapter.sync.ratelimit import RateLimiter
from adapter.sync.retry import Failure, classify, item_backoff_s, retry_after_seconds, retry_policy

REQ = httpx.Request("POST", "http://x.test/fhir")
OO = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad"}]}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (201, None),
        (400, "permanent"),
        (404, "permanent"),
        (422, "permanent"),
        (408, "retryable"),
        (429, "retryable"),
        (500, "retryable"),
        (503, "retryable"),
        (409, "conflict"),
        (412, "conflict"),
        (401, "auth"),
        (403, "auth"),
    ],
)
def test_statuses(status: int, kind: str | None) -> None:
    failure = classify(httpx.Response(status, content=dumps(OO)))
    assert (failure.kind if failure else None) == kind
    if failure is not None:
        assert failure.outcome == OO  # the partner's OperationOutcome is kept
        assert "invalid: bad" in failure.reason


@pytest.mark.parametrize(
    ("exc", "kind", "ambiguous"),
    [
        (httpx.ConnectError("refused", request=REQ), "retryable", False),
        (httpx.ConnectTimeout("t", request=REQ), "retryable", False),
        (httpx.ReadTimeout("t", request=REQ), "retryable", True),
        (httpx.ReadError("reset", request=REQ), "retryable", True),
        (httpx.RemoteProtocolError("eof", request=REQ), "retryable", True),
        (httpx.UnsupportedProtocol("ftp", request=REQ), "permanent", False),
    ],
)
def test_exceptions(exc: Exception, kind: str, ambiguous: bool) -> None:
    failure = classify(exc)
    assert failure is not None and failure.kind == kind and failure.ambiguous == ambiguous


def test_retry_after() -> None:
    assert retry_after_seconds("7", 0) == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert retry_after_seconds("soon", 0) is None
    failure = classify(httpx.Response(429, headers={"Retry-After": "3"}))
    assert failure is not None and failure.retry_after_s == 3 and not failure.ambiguous


def test_policy_retries_only_retryable_and_honours_retry_after() -> None:
    sleeps: list[float] = []
    cfg = Retry(attempts=4, max_wait_s=5)
    answers: list[object] = [
        Failure("retryable", "429", 429, retry_after_s=2.0),
        Failure("retryable", "503", 503),
        "ok",
    ]
    calls: list[object] = []

    def call() -> object:
        calls.append(1)
        return answers.pop(0)

    result = retry_policy(cfg, wait=wait_none(), sleep=sleeps.append)(call)
    assert result == "ok" and len(calls) == 3
    assert sleeps == [2.0, 0.0]  # Retry-After honoured, then no wait
    permanent = Failure("permanent", "400", 400)
    calls.clear()

    def refuse() -> Failure:
        calls.append(1)
        return permanent

    assert retry_policy(cfg, wait=wait_none(), sleep=sleeps.append)(refuse) is permanent
    assert len(calls) == 1  # never retried


def test_policy_gives_up_with_the_last_failure_and_caps_retry_after() -> None:
    sleeps: list[float] = []
    cfg = Retry(attempts=3, max_wait_s=4)
    last = Failure("retryable", "429", 429, retry_after_s=3600)
    assert retry_policy(cfg, wait=wait_none(), sleep=sleeps.append)(lambda: last) is last
    assert sleeps == [4.0, 4.0]  # a partner cannot park us for an hour


def test_item_backoff_is_exponential_and_capped() -> None:
    cfg = Retry(initial_wait_s=1, jitter_s=0, item_max_wait_s=60)
    assert [item_backoff_s(cfg, n) for n in (1, 2, 3, 10, 100)] == [1, 2, 4, 60, 60]


def test_rate_limiter() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)

    limiter = RateLimiter(10, 2, clock=lambda: now[0], sleep=sleep)
    assert [limiter.acquire() for _ in range(4)] == [0.0, 0.0, pytest.approx(0.1), pytest.approx(0.2)]
    now[0] = 10.0
    assert limiter.acquire() == 0.0


@pytest.mark.parametrize(
    ("status", "kind"), [(401, "auth"), (403, "auth"), (404, "permanent"), (409, "conflict"), (429, "retryable")]
)
def test_an_entry_of_a_batch_response_is_classified_like_a_whole_request(status: int, kind: str) -> None:
    """A 403 on one entry of a batch refuses our credentials' scope, as a 403 on the request does: the item waits
    for a later run instead of going dead."""
    from adapter.sync.plan import EntryResult
    from adapter.sync.push import _entry_failure

    assert _entry_failure(EntryResult(status)).kind == kind
