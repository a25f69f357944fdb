"""How the adapter authenticates to a partner: nothing, a bearer token, or SMART Backend Services.

SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): POST the token endpoint
with ``grant_type=client_credentials``, the scope, and a ``client_assertion`` JWT signed with the adapter's
private key (RS384 or ES384; iss = sub = client_id, aud = token URL, exp <= 5 minutes, a unique jti). The
access token is cached until shortly before it expires; a 401 from the FHIR server drops it once.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from adapter.errors import PartnerAuthError, PartnerConfigError
from adapter.fhir import loads
from adapter.sync.partners import BearerAuth, NoAuth, Partner, SmartBackendAuth, bearer_token, private_key_pem
from adapter.sync.retry import Failure, classify

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXPIRY_MARGIN_S = 30.0  # renew this long before the token expires: clocks drift, requests take time


class Authenticator(Protocol):
    def headers(self, http: httpx.Client) -> dict[str, str] | Failure:
        """Headers for the next request, or the Failure that kept us from getting credentials."""
        ...

    def invalidate(self) -> None:
        """Forget cached credentials (after a 401)."""
        ...


class NoAuthenticator:
    def headers(self, http: httpx.Client) -> dict[str, str] | Failure:
        return {}

    def invalidate(self) -> None:
        return None


class BearerAuthenticator:
    def __init__(self, token: str) -> None:
        self._header = {"Authorization": f"Bearer {token}"}

    def headers(self, http: httpx.Client) -> dict[str, str] | Failure:
        return self._header

    def invalidate(self) -> None:
        return None  # a static token cannot be renewed


def load_signing_key(pem: bytes, algorithm: str) -> Any:
    """The private key, checked against the algorithm (RS384: RSA >= 2048 bits; ES384: EC P-384)."""
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise PartnerConfigError(f"SMART private key is not a readable unencrypted PEM key: {exc}") from None
    if algorithm == "RS384" and not (isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048):
        raise PartnerConfigError("SMART algorithm RS384 needs an RSA private key of at least 2048 bits")
    if algorithm == "ES384" and not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"):
        raise PartnerConfigError("SMART algorithm ES384 needs an EC private key on curve P-384")
    return key


class SmartAuthenticator:
    def __init__(
        self,
        cfg: SmartBackendAuth,
        key_pem: bytes,
        *,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.cfg = cfg
        self._key = load_signing_key(key_pem, cfg.algorithm)
        self._clock = clock
        self._timeout = timeout
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def assertion(self) -> str:
        now = int(self._clock())
        claims = {
            "iss": self.cfg.client_id,
            "sub": self.cfg.client_id,
            "aud": self.cfg.token_url,
            "iat": now,
            "exp": now + self.cfg.assertion_lifetime_s,
            "jti": str(uuid.uuid4()),  # single use: token endpoints reject a replayed jti
        }
        headers = {"typ": "JWT", **({"kid": self.cfg.key_id} if self.cfg.key_id else {})}
        return jwt.encode(claims, self._key, algorithm=self.cfg.algorithm, headers=headers)

    def headers(self, http: httpx.Client) -> dict[str, str] | Failure:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                fetched = self._fetch(http)
                if isinstance(fetched, Failure):
                    return fetched
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self, http: httpx.Client) -> Failure | None:
        form = {
            "grant_type": "client_credentials",
            "scope": self.cfg.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        try:
            response = http.post(
                self.cfg.token_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self._timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            failure = classify(exc)
            assert failure is not None  # noqa: S101 - classify never returns None for an exception
            return Failure(failure.kind, f"token endpoint: {failure.reason}", ambiguous=False)
        body = _json_object(response.content)
        if response.status_code != 200:
            failure = classify(response)
            error = f"{body.get('error', '')}: {body.get('error_description', '')}".strip(": ")
            reason = f"token endpoint {self.cfg.token_url} refused the client assertion: HTTP {response.status_code}"
            if error:
                reason += f" {error}"
            kind = failure.kind if failure is not None and failure.retryable else "auth"
            return Failure(kind, reason, response.status_code, retry_after_s=failure.retry_after_s if failure else None)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            return Failure("auth", f"token endpoint {self.cfg.token_url} answered without an access_token")
        lifetime = _lifetime_s(body.get("expires_in"))
        if lifetime is None:  # the value is not echoed: the answer carries the token
            return Failure(
                "auth",
                f"token endpoint {self.cfg.token_url} answered an expires_in that is not a positive number of"
                " seconds (RFC 6749 section 5.1)",
            )
        self._token = token
        self._expires_at = self._clock() + max(lifetime / 2, lifetime - EXPIRY_MARGIN_S)
        return None


DEFAULT_LIFETIME_S = 300.0  # expires_in is only RECOMMENDED (RFC 6749 section 5.1): assume SMART's usual 5 minutes
_SECONDS_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _lifetime_s(value: object) -> float | None:
    """The token's lifetime from ``expires_in``: a positive JSON number, or digits in a string (some token servers
    quote it); the default when absent. None when it is anything else ("3600s", true, -1, NaN): unusable."""
    if value is None:
        return DEFAULT_LIFETIME_S
    if isinstance(value, str) and _SECONDS_TEXT.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        body = loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def authenticator(
    partner: Partner,
    env: Mapping[str, str],
    *,
    base_dir: Path | None = None,
    clock: Callable[[], float] = time.time,
) -> Authenticator:
    auth = partner.auth
    if isinstance(auth, NoAuth):
        return NoAuthenticator()
    if isinstance(auth, BearerAuth):
        return BearerAuthenticator(bearer_token(auth, env))
    timeout = httpx.Timeout(partner.timeouts.read_s, connect=partner.timeouts.connect_s)
    return SmartAuthenticator(auth, private_key_pem(auth, env, base_dir), clock=clock, timeout=timeout)


def auth_error(partner: Partner, failure: Failure) -> PartnerAuthError:
    return PartnerAuthError(f"partner {partner.id}: {failure.reason}", status=failure.status, outcome=failure.outcome)
