"""What a partner, or its partners-file entry, can get wrong: a clear error naming the file or the partner,
never a traceback; and what a refusal of our credentials (401/403) does to the outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.errors import PartnerAuthError, PartnerConfigError
from adapter.pipeline import MappedChart
from adapter.settings import Settings
from adapter.sync import outbox
from adapter.sync.auth import SmartAuthenticator, auth_error
from adapter.sync.client import FhirClient
from adapter.sync.commands import partners_check
from adapter.sync.partners import SmartBackendAuth, load_partners
from adapter.sync.push import Pusher
from adapter.sync.retry import Failure
from adapter.sync.store import open_store
from adapter.sync.worker import Worker, charts_by_client
from tests.conftest import bh_adapter
from tests.sync.conftest import no_wait, partner, release_except
from tests.sync.fakefhir import FakeFhir, Fault

TOKEN_URL = "http://auth.test/token"  # noqa: S105 - a URL, not a secret
ACCESS_TOKEN = "secret-access-token-123"  # noqa: S105 - a test value that must never reach a message
PARTNER_YAML = """\
partners:
  - id: café-psych
    name: Café Psychiatry
    role: psychiatry
    base_url: http://fake.test/fhir
    recipient: {organization_npi: "1728035910"}
"""


# --- a partners file that is not UTF-8 -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_partners_file_that_is_not_utf8_is_a_located_config_error(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "partners.yaml"
    path.write_bytes(PARTNER_YAML.encode(encoding))
    with pytest.raises(PartnerConfigError) as caught:
        load_partners(path, {})
    message = str(caught.value)
    assert message.startswith(f"{path}: not UTF-8 text (byte 0x")
    assert "\n" not in message and caught.value.exit_code == 2


def test_the_cli_reports_a_non_utf8_partners_file_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "partners.yaml"
    path.write_bytes(PARTNER_YAML.encode("latin-1"))
    result = bh_adapter("partners", "check", "--partners", path, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "not UTF-8" in lines[0]


# --- a token endpoint whose expires_in is not a number ---------------------------------------------------------


def _key_pem() -> bytes:
    key = rsa.generate_private_key(65537, 2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _token_endpoint(expires_in: object, calls: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.url.path == "/token":
            return httpx.Response(
                200, json={"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": expires_in}
            )
        return httpx.Response(200, json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"})

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("expires_in", ["3600s", "soon", True, -5, 0, [3600], {"s": 1}, ""])
def test_an_unusable_expires_in_is_an_auth_failure_naming_the_partner_and_the_field(expires_in: object) -> None:
    cfg = SmartBackendAuth(type="smart-backend", token_url=TOKEN_URL, client_id="bh", private_key_env="K")
    p = partner(auth=cfg.model_dump())
    calls: list[httpx.Request] = []
    client = FhirClient(
        p,
        httpx.Client(transport=_token_endpoint(expires_in, calls)),
        SmartAuthenticator(cfg, _key_pem()),
        retrying=no_wait(p),
    )
    result = client.capabilities()
    assert isinstance(result, Failure) and result.kind == "auth"
    assert [c.url.path for c in calls] == ["/token"]  # no FHIR request went out with a token we cannot time
    error = auth_error(p, result)
    assert isinstance(error, PartnerAuthError) and error.exit_code == 7
    assert str(error).startswith(f"partner {p.id}: token endpoint {TOKEN_URL} answered an expires_in")
    assert ACCESS_TOKEN not in str(error)
    client.capabilities()  # nothing was cached: the token endpoint is asked again
    assert [c.url.path for c in calls] == ["/token", "/token"]


@pytest.mark.parametrize(("expires_in", "lifetime"), [(3600, 3570.0), ("3600", 3570.0), (None, 270.0), (40, 20.0)])
def test_a_usable_expires_in_times_the_token(expires_in: object, lifetime: float) -> None:
    cfg = SmartBackendAuth(type="smart-backend", token_url=TOKEN_URL, client_id="bh", private_key_env="K")
    now = [1_000.0]
    auth = SmartAuthenticator(cfg, _key_pem(), clock=lambda: now[0])
    calls: list[httpx.Request] = []
    http = httpx.Client(transport=_token_endpoint(expires_in, calls))
    assert auth.headers(http) == {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    now[0] += lifetime - 1
    auth.headers(http)
    assert len(calls) == 1  # still cached
    now[0] += 1
    auth.headers(http)
    assert len(calls) == 2  # renewed


def test_partners_check_reports_an_unusable_expires_in_for_that_partner(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(_key_pem())
    (tmp_path / "partners.yaml").write_text(
        "partners:\n"
        "  - id: northfield\n"
        "    name: Northfield\n"
        "    role: psychiatry\n"
        "    base_url: http://fake.test/fhir\n"
        "    recipient: {organization_npi: '1728035910'}\n"
        f"    auth: {{type: smart-backend, token_url: '{TOKEN_URL}', client_id: bh, private_key_file: key.pem}}\n",
        encoding="utf-8",
    )
    calls: list[httpx.Request] = []
    (check,) = partners_check(
        Settings(database_url=f"sqlite:///{tmp_path / 'check.db'}"),
        tmp_path / "partners.yaml",
        {},
        transport=_token_endpoint("3600s", calls),
    )
    assert check.partner.id == "northfield" and not check.ok
    assert any("answered an expires_in that is not a positive number" in line for line in check.problems)
    assert not any(ACCESS_TOKEN in line for line in check.problems)


# --- 403: the partner refuses what our credentials may do -------------------------------------------------------


def test_a_403_skips_the_partner_and_keeps_the_items_for_a_later_run(charts: list[MappedChart], db_url: str) -> None:
    """A 403 (the credentials' scope does not cover the write) is a refusal of our credentials, not of the data:
    the partner is skipped for this run, the item is failed (retried after its backoff, dead only after
    item_attempts), the partner's OperationOutcome is kept, and the other items are not sent to be refused too."""
    forbidden: dict[str, Any] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "forbidden", "details": {"text": "scope does not permit write"}}],
    }
    fake = FakeFhir()
    fake.faults.append(Fault(lambda r: r.method == "POST", lambda r: httpx.Response(403, json=forbidden), 10_000))
    engine = open_store(db_url)
    p = partner()
    push = Pusher(
        FhirClient(p, httpx.Client(transport=fake.transport()), retrying=no_wait(p)),
        engine,
        "transaction",
        "client-ids",
        "https://riverbend.example.org/fhir/sid/resource-id",
    )
    outbox.enqueue(engine, "psych", ["cl-06", "cl-07"], 0)
    worker = Worker(engine, {"psych": push}, charts_by_client(charts), release_except(), clock=lambda: 1.0)
    worker.batch_items = 1  # one item per Bundle: the second would be a second refusal
    summary = worker.run_once()["psych"]
    assert summary.dead == 0
    items = outbox.items(engine)
    assert sorted(item.state for item in items) == ["failed", "pending"]  # the second skipped with the partner
    (refused,) = [item for item in items if item.state == "failed"]
    assert refused.last_status == 403
    assert refused.last_outcome is not None and refused.last_outcome["issue"][0]["code"] == "forbidden"
    assert len([r for r in fake.requests if r.method == "POST"]) == 1
    assert fake.store == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("partners:\n  - id: a\n    id: b\n", "key 'id' appears twice in one mapping (line 3, column 5)"),
        ("partners: [a\n", "expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
    ],
)
def test_bad_yaml_is_one_line_naming_the_place(tmp_path: Path, text: str, problem: str) -> None:
    """A key given twice would silently override the first (a second `push:`); PyYAML keeps the last."""
    path = tmp_path / "partners.yaml"
    path.write_text(text)
    with pytest.raises(PartnerConfigError) as caught:
        load_partners(path, {})
    assert str(caught.value) == f"{path}: not valid YAML: {problem}"
