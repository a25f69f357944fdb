"""The adapter's error tree.

Each error knows how it shows up everywhere: the OperationOutcome issue type it becomes on the API, the HTTP
status, and the CLI exit code. The table lives here once; the CLI and the API only look it up.
Messages never carry resource bodies, names or identifier values (PHI discipline): they name files, record ids
and fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Problem:
    """One located problem: where (file, record id, field path) and what."""

    message: str
    location: str | None = None  # e.g. "fixtures/clinic/c01.json"
    record_id: str | None = None
    field: str | None = None

    def line(self) -> str:
        """One human line: `file: record r1: field a.b: message`."""
        parts = [p for p in (self.location,) if p]
        if self.record_id:
            parts.append(f"record {self.record_id}")
        if self.field:
            parts.append(f"field {self.field}")
        parts.append(self.message)
        return ": ".join(parts)


@dataclass
class AdapterError(Exception):
    """Base of every error the adapter raises on purpose."""

    message: str
    problems: list[Problem] = field(default_factory=list)

    issue_code: ClassVar[str] = "exception"  # http://hl7.org/fhir/issue-type
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        return [p.line() for p in self.problems] or [self.message]

    def operation_outcome(self) -> dict[str, Any]:
        issues = [
            {
                "severity": "error",
                "code": self.issue_code,
                "diagnostics": p.line(),
                **({"expression": [p.field]} if p.field else {}),
            }
            for p in self.problems
        ] or [{"severity": "error", "code": self.issue_code, "diagnostics": self.message}]
        return {"resourceType": "OperationOutcome", "issue": issues}


class UsageError(AdapterError):
    """The command line or request asked for something that cannot be done."""

    issue_code = "invalid"
    http_status = 400
    exit_code = 2


class InputError(AdapterError):
    """Input records are malformed or break a rule of the record model."""

    issue_code = "invalid"
    http_status = 422
    exit_code = 3


class UnsafeInputError(InputError):
    """Input tried something the parser refuses on principle (DTD, entities, network access)."""

    issue_code = "security"


class TerminologyError(InputError):
    """A code or an instrument the catalog does not know, or answers that break its rules."""

    issue_code = "code-invalid"


class ScoringError(TerminologyError):
    """Item answers out of range, or a stated total that disagrees with the items."""

    issue_code = "business-rule"


class FhirValidationError(AdapterError):
    """A resource the adapter built is not valid FHIR R4: a bug in a mapping, never the user's fault."""

    issue_code = "structure"
    http_status = 500
    exit_code = 4


class OutputError(AdapterError):
    """The output could not be written."""

    issue_code = "exception"
    exit_code = 5


# --- sync with partners (adapter/sync/) ------------------------------------------------------------------------


class PartnerConfigError(UsageError):
    """The partners file is missing, malformed, or names something that does not exist."""


@dataclass
class SyncError(AdapterError):
    """Talking to a partner's FHIR server failed. `status` and `outcome` are the partner's HTTP status and
    OperationOutcome when it sent them (kept as received: they explain the refusal)."""

    status: int | None = None
    outcome: dict[str, Any] | None = None

    issue_code = "transient"
    http_status = 502
    exit_code = 6


@dataclass
class PartnerAuthError(SyncError):
    """The partner (or its token endpoint) refused the adapter's credentials."""

    issue_code = "security"
    exit_code = 7


# --- consent release point (adapter/consent/) -----------------------------------------------------------------


class AuditError(AdapterError):
    """The audit trail of a disclosure could not be written (or read): nothing is released (fail closed)."""

    issue_code = "exception"
    http_status = 503
    exit_code = 8


# --- the service (adapter/api/) -------------------------------------------------------------------------------


class NotFoundError(UsageError):
    """The request names something the adapter does not hold (a client, an outbox item, a resource)."""

    issue_code = "not-found"
    http_status = 404


class AuthenticationError(AdapterError):
    """No credentials, or credentials that are unknown, revoked or expired."""

    issue_code = "login"
    http_status = 401
    exit_code = 9


class ForbiddenError(AdapterError):
    """Valid credentials that do not allow this request (role, partner, purpose of use)."""

    issue_code = "forbidden"
    http_status = 403
    exit_code = 9


class PayloadTooLargeError(UsageError):
    """The request body is larger than the service accepts."""

    issue_code = "too-costly"
    http_status = 413


class UnsupportedMediaError(UsageError):
    """The request body's content type is not one the route reads."""

    issue_code = "not-supported"
    http_status = 415


@dataclass
class RateLimitError(AdapterError):
    """The caller sent more requests than its token's rate allows; `retry_after` seconds until the next one."""

    retry_after: int = 1

    issue_code = "throttled"
    http_status = 429
    exit_code = 6


class NothingReleasableError(AdapterError):
    """The consent rules withhold the client's record itself from this recipient: there is nothing to send
    (a utilization-review package without its subject)."""

    issue_code = "suppressed"
    http_status = 409
    exit_code = 10
