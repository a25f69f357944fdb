"""SMART Backend Services: a token endpoint that verifies the signed assertion; a bad key is refused clearly."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.errors import PartnerConfigError
from adapter.sync.auth import ASSERTION_TYPE, SmartAuthenticator, authenticator
from adapter.sync.client import FhirClient
from adapter.sync.retry import Failure
from tests.sync.conftest import no_wait, partner

TOKEN_URL = "http://auth.test/token"  # noqa: S105 - a URL, not a secret


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TokenEndpoint:
    """Verifies client_assertion against the registered public key (as a SMART server does)."""

    def __init__(self, public_key: object, algorithm: str) -> None:
        self.public_key = public_key
        self.algorithm = algorithm
        self.issued = 0
        self.jtis: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            assert form["grant_type"] == "client_credentials"
            assert form["client_assertion_type"] == ASSERTION_TYPE
            try:
                claims = jwt.decode(
                    form["client_assertion"],
                    self.public_key,
                    algorithms=[self.algorithm],  # type: ignore[arg-type]
                    audience=TOKEN_URL,
                    issuer="bh-adapter",
                    leeway=600,
                )
            except jwt.InvalidTokenError as exc:
                return httpx.Response(401, json={"error": "invalid_client", "error_description": str(exc)})
            assert claims["sub"] == "bh-adapter" and claims["exp"] - claims["iat"] <= 300
            assert claims["jti"] not in self.jtis  # never replayed
            self.jtis.add(claims["jti"])
            self.issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"tok-{self.issued}",
                    "token_type": "bearer",
                    "expires_in": 300,
                    "scope": form["scope"],
                },
            )
        if request.headers.get("Authorization") != f"Bearer tok-{self.issued}":
            return httpx.Response(401)
        return httpx.Response(200, json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"})


def smart_partner(tmp_path: Path, key_pem: bytes, algorithm: str = "RS384"):  # type: ignore[no-untyped-def]
    (tmp_path / "key.pem").write_bytes(key_pem)
    return partner(
        auth={
            "type": "smart-backend",
            "token_url": TOKEN_URL,
            "client_id": "bh-adapter",
            "algorithm": algorithm,
            "key_id": "k1",
            "private_key_file": "key.pem",
        }
    )


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_token_obtained_cached_and_renewed(tmp_path: Path, algorithm: str) -> None:
    key = rsa.generate_private_key(65537, 2048) if algorithm == "RS384" else ec.generate_private_key(ec.SECP384R1())
    endpoint = TokenEndpoint(key.public_key(), algorithm)
    p = smart_partner(tmp_path, pem(key), algorithm)
    now = [time.time()]  # the endpoint checks exp against the real clock
    auth = authenticator(p, {}, base_dir=tmp_path, clock=lambda: now[0])
    client = FhirClient(p, httpx.Client(transport=httpx.MockTransport(endpoint)), auth, retrying=no_wait(p))
    for _ in range(3):
        assert not isinstance(client.capabilities(), Failure)
    assert endpoint.issued == 1  # cached
    now[0] += 290  # past expiry minus the margin
    assert not isinstance(client.capabilities(), Failure)
    assert endpoint.issued == 2
    header = jwt.get_unverified_header(auth.assertion())  # type: ignore[attr-defined]
    assert header["kid"] == "k1" and header["alg"] == algorithm


def test_a_bad_key_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    registered = rsa.generate_private_key(65537, 2048)
    other = rsa.generate_private_key(65537, 2048)
    p = smart_partner(tmp_path, pem(other))
    endpoint = TokenEndpoint(registered.public_key(), "RS384")
    client = FhirClient(
        p,
        httpx.Client(transport=httpx.MockTransport(endpoint)),
        authenticator(p, {}, base_dir=tmp_path),
        retrying=no_wait(p),
    )
    result = client.capabilities()
    assert isinstance(result, Failure) and result.kind == "auth" and result.status == 401
    assert "refused the client assertion" in result.reason and "invalid_client" in result.reason
    assert "Signature verification failed" in result.reason


def test_key_must_match_the_algorithm(tmp_path: Path) -> None:
    p = smart_partner(tmp_path, pem(ec.generate_private_key(ec.SECP384R1())), "RS384")
    with pytest.raises(PartnerConfigError, match="RS384 needs an RSA private key"):
        authenticator(p, {}, base_dir=tmp_path)
    (tmp_path / "key.pem").write_bytes(b"not a key")
    with pytest.raises(PartnerConfigError, match="not a readable"):
        SmartAuthenticator(p.auth, b"not a key")  # type: ignore[arg-type]
