"""Dependencies of the API's routes: the shared Services and the authenticated caller.

Every route but /health and /ready depends on a `*Caller` alias. Authentication is a bearer token
(adapter/store/tokens.py): missing, unknown, revoked or expired -> 401 with `WWW-Authenticate`; a valid token
with the wrong role, or a partner asking for a purpose its token is not entitled to -> 403. What was decided is
left on `request.state.audit` for the request log (adapter/api/audit.py), refusals included.

A partner's purpose of use comes from its credentials: the `X-Purpose-Of-Use` header may pick one of the
token's purposes, never widen them; a query parameter is never read for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapter.api.limits import RateLimiter
from adapter.consent.vocab import vocabulary
from adapter.errors import AuthenticationError, ForbiddenError, UsageError
from adapter.services import Services
from adapter.store.tokens import Role, Token

__all__ = [
    "Caller",
    "IngestCaller",
    "PartnerCaller",
    "Role",
    "ServicesDep",
    "StaffCaller",
    "get_services",
    "require_roles",
]

PURPOSE_HEADER = "X-Purpose-Of-Use"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="`Authorization: Bearer <token>`; tokens come from `bh-adapter tokens create` (docs/api.md)",
)


@dataclass(frozen=True)
class Caller:
    token_id: str  # the token's public id (never the secret)
    role: Role
    partner_id: str | None  # partners only
    purposes: tuple[str, ...]  # partners only: purposes of use the token is entitled to (v3 ActReason codes)
    purpose: str | None  # this request's purpose (header, else purposes[0]); never from a query parameter


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _audit(request: Request) -> dict[str, Any]:
    """The request log's notes on this request (read by the audit middleware after the response)."""
    notes: dict[str, Any] | None = getattr(request.state, "audit", None)
    if notes is None:
        notes = {}
        request.state.audit = notes
    return notes


def _refuse(request: Request, refusal: str, error: AuthenticationError | ForbiddenError) -> NoReturn:
    _audit(request)["refusal"] = refusal
    raise error


def _authenticate(request: Request, services: Services, credentials: HTTPAuthorizationCredentials | None) -> Token:
    if credentials is None or credentials.scheme.lower() != "bearer":
        _refuse(request, "missing-token", AuthenticationError("a bearer token is required"))
    check = services.tokens.check(credentials.credentials, services.clock())
    if check.token is not None:
        _audit(request).update(token_id=check.token.token_id, role=check.token.role, partner_id=check.token.partner_id)
    if check.verdict != "ok" or check.token is None:
        # One message for every bad token: a prober learns nothing about which ids exist.
        _refuse(request, f"{check.verdict}-token", AuthenticationError("the bearer token is not valid"))
    return check.token


def _purpose(request: Request, token: Token, asked: str | None) -> str | None:
    if token.role == "partner":
        if asked is None:
            return token.purposes[0]
        if asked not in token.purposes:
            _refuse(
                request, "purpose-not-entitled", ForbiddenError("this token is not entitled to that purpose of use")
            )
        return asked
    if asked is not None and not vocabulary().is_purpose(asked):
        raise UsageError(f"{PURPOSE_HEADER}: not a v3-ActReason purpose of use")
    return asked


def require_roles(*roles: Role) -> Callable[..., Caller]:
    """A dependency that authenticates the caller, applies its rate limit, and admits only `roles`."""

    def caller(
        request: Request,
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        purpose: Annotated[
            str | None,
            Header(
                alias=PURPOSE_HEADER,
                description="partners: one of the token's purposes of use (default: its first)",
            ),
        ] = None,
    ) -> Caller:
        token = _authenticate(request, services, credentials)
        limiter: RateLimiter = request.app.state.rate_limiter
        limiter.take(token.token_id)
        if token.role not in roles:
            _refuse(request, "wrong-role", ForbiddenError(f"this route is not open to the {token.role} role"))
        chosen = _purpose(request, token, purpose)
        _audit(request)["purpose"] = chosen
        return Caller(token.token_id, token.role, token.partner_id, token.purposes, chosen)

    return caller


StaffCaller = Annotated[Caller, Depends(require_roles("clinic-admin"))]
IngestCaller = Annotated[Caller, Depends(require_roles("clinic-admin", "ingest"))]
PartnerCaller = Annotated[Caller, Depends(require_roles("partner"))]
