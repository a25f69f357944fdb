"""Sort failures before retrying (STYLE habit 6), and the retry policy factory.

``classify`` turns an HTTP answer or an httpx exception into a :class:`Failure` value, or ``None`` when the
answer is a success. Only ``retryable`` failures are retried: transport errors, 408, 429 (after its
Retry-After), 5xx. 409 and 412 are ``conflict`` (the caller re-reads and tries once more), 401/403 ``auth``,
every other 4xx ``permanent``: the partner's OperationOutcome is kept on the value.

``auth`` refuses our credentials, not the data: a 401 (no valid token) or a 403 (the token's scope or the
partner's grant does not cover the request). Every other item would be refused the same way until someone fixes
the credentials or the grant, so the worker skips the partner for the run and keeps the item for a later one
(dead only after ``item_attempts`` runs); burying each item as ``permanent`` would lose them all to one
configuration mistake.

``ambiguous`` says whether the partner may have applied the request even though no success came back (a
timeout while reading, a connection reset mid-response, a 5xx): before sending again the caller re-reads, so
a retry never creates a second version of what already arrived.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from adapter.fhir import loads
from adapter.sync.partners import Retry

FailureKind = Literal["retryable", "conflict", "auth", "permanent"]
RETRYABLE_STATUSES = frozenset({408, 429})
CONFLICT_STATUSES = frozenset({409, 412})
AUTH_STATUSES = frozenset({401, 403})
# Exceptions raised before any byte of the request left: the partner cannot have applied it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# A bug or a configuration error on our side: retrying cannot help.
_PERMANENT_EXC = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL, httpx.TooManyRedirects)


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    reason: str  # one line, no PHI: status and the partner's issue texts, or the exception class
    status: int | None = None
    outcome: dict[str, Any] | None = None  # the partner's OperationOutcome as received
    retry_after_s: float | None = None
    ambiguous: bool = False

    @property
    def retryable(self) -> bool:
        return self.kind == "retryable"


def outcome_of(response: httpx.Response) -> dict[str, Any] | None:
    """The OperationOutcome in a response body, if there is one."""
    try:
        body = loads(response.content)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return None


def outcome_text(outcome: dict[str, Any] | None, limit: int = 3) -> str:
    """The first issues of an OperationOutcome as one line: `code: text @ expression`."""
    if not outcome:
        return ""
    parts = []
    for issue in outcome.get("issue", [])[:limit]:
        text = (issue.get("details") or {}).get("text") or issue.get("diagnostics") or ""
        where = ",".join(issue.get("expression", []) or issue.get("location", []))
        parts.append(f"{issue.get('code', '?')}: {text}" + (f" @ {where}" if where else ""))
    return "; ".join(parts)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def classify_status(status: int, response: httpx.Response | None = None, now: float | None = None) -> Failure | None:
    if status < 400:
        return None
    outcome = outcome_of(response) if response is not None else None
    reason = f"HTTP {status}" + (f": {outcome_text(outcome)}" if outcome else "")
    if status in RETRYABLE_STATUSES or status >= 500:
        retry_after = None
        if response is not None:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), time.time() if now is None else now)
        # A 5xx or 408 may come after the partner applied the request; a 429 is a refusal before any work.
        return Failure("retryable", reason, status, outcome, retry_after, ambiguous=status != 429)
    if status in CONFLICT_STATUSES:
        return Failure("conflict", reason, status, outcome)
    if status in AUTH_STATUSES:
        return Failure("auth", reason, status, outcome)
    return Failure("permanent", reason, status, outcome)


def classify(result: httpx.Response | BaseException, now: float | None = None) -> Failure | None:
    """None for a success; otherwise what kind of failure it is (see the module docstring)."""
    if isinstance(result, httpx.Response):
        return classify_status(result.status_code, result, now)
    name = type(result).__name__
    if isinstance(result, _PERMANENT_EXC):
        return Failure("permanent", f"{name}: {result}")
    if isinstance(result, _NOT_SENT):
        return Failure("retryable", f"{name} (not sent)", ambiguous=False)
    if isinstance(result, httpx.TransportError):
        return Failure("retryable", f"{name} (may have been applied)", ambiguous=True)
    return Failure("permanent", f"{name}: {result}")


class WaitRetryAfter(wait_base):
    """The backoff, or the partner's Retry-After when longer (capped: a partner cannot park us for hours)."""

    def __init__(self, backoff: wait_base, cap_s: float) -> None:
        self.backoff = backoff
        self.cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = float(self.backoff(retry_state))
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed:
            result = outcome.result()
            if isinstance(result, Failure) and result.retry_after_s is not None:
                wait = max(wait, min(result.retry_after_s, self.cap_s))
        return wait


def _is_retryable(result: object) -> bool:
    return isinstance(result, Failure) and result.retryable


def _last_result(retry_state: RetryCallState) -> object:
    assert retry_state.outcome is not None  # noqa: S101 - tenacity calls this after an attempt
    return retry_state.outcome.result()


def retry_policy(
    cfg: Retry,
    *,
    wait: wait_base | None = None,
    sleep: Callable[[float], None] = time.sleep,
    honor_retry_after: bool = True,
) -> Retrying:
    """Tenacity policy over calls that return a value or a Failure (never raise for HTTP failures).

    Only retryable Failures are retried, with exponential backoff + jitter capped at ``cfg.max_wait_s``;
    when attempts run out, the last Failure is returned (not raised). Tests pass ``wait=wait_none()`` and a
    recording ``sleep``.
    """
    backoff = (
        wait
        if wait is not None
        else wait_exponential_jitter(max=cfg.max_wait_s, jitter=cfg.jitter_s, multiplier=cfg.initial_wait_s)
    )
    return Retrying(
        retry=retry_if_result(_is_retryable),
        wait=WaitRetryAfter(backoff, cfg.max_wait_s) if honor_retry_after else backoff,
        stop=stop_after_attempt(cfg.attempts),
        sleep=sleep,
        retry_error_callback=_last_result,
    )


def item_backoff_s(cfg: Retry, attempts: int, rng: random.Random | None = None) -> float:
    """When the outbox tries an item again after ``attempts`` failed runs: exponential, jittered, capped."""
    base = min(cfg.item_max_wait_s, cfg.initial_wait_s * (2 ** min(40, max(0, attempts - 1))))
    jitter = (rng or random).uniform(0, cfg.jitter_s)
    return float(min(cfg.item_max_wait_s, base + jitter))
