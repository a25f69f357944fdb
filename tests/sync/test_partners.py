"""The partners file: shipped examples load; mistakes are reported located and all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.errors import PartnerConfigError
from adapter.sync.partners import bearer_token, load_partners, parse_partners, select
from tests.conftest import ROOT

GOOD = {
    "id": "p1",
    "name": "P",
    "role": "psychiatry",
    "base_url": "http://127.0.0.1:1/fhir/",
    "recipient": {"organization_npi": "1728035910"},
}


@pytest.mark.parametrize("name", ["local-peers.yaml", "hapi-sandbox.yaml"])
def test_shipped_partner_files_load(name: str) -> None:
    partners = load_partners(ROOT / "partners" / name, {})
    assert partners and all(p.base_url.startswith("http") for p in partners)


def test_env_expansion_and_defaults() -> None:
    data = {"partners": [{**GOOD, "base_url": "${PEER:-http://127.0.0.1:9/fhir}"}]}
    assert parse_partners(data, "t", {})[0].base_url == "http://127.0.0.1:9/fhir"
    data = {"partners": [{**GOOD, "base_url": "${PEER:-http://127.0.0.1:9/fhir}"}]}
    assert parse_partners(data, "t", {"PEER": "https://x.test/r4/"})[0].base_url == "https://x.test/r4"
    with pytest.raises(PartnerConfigError, match="PEER is not set"):
        parse_partners({"partners": [{**GOOD, "base_url": "${PEER}"}]}, "t", {})


def test_defaults_and_trailing_slash() -> None:
    p = parse_partners({"partners": [GOOD]}, "t", {})[0]
    assert p.base_url == "http://127.0.0.1:1/fhir"
    assert (p.write_mode, p.ids, p.purpose_of_use, p.auth.type) == ("auto", "auto", "TREAT", "none")
    assert p.pushes("Observation")


def test_every_problem_is_located() -> None:
    bad = {
        **GOOD,
        "recipient": {"organization_npi": "1234567890"},  # wrong check digit
        "role": "dentist",
        "auth": {"type": "smart-backend", "token_url": "https://t", "client_id": "c"},  # no key
        "pull": ["Observation"],
        "bogus": 1,
    }
    with pytest.raises(PartnerConfigError) as caught:
        parse_partners({"partners": [bad]}, "partners.yaml", {})
    fields = {p.field for p in caught.value.problems}
    assert {"partners.0.recipient.organization_npi", "partners.0.role", "partners.0.pull", "partners.0.bogus"} <= fields
    assert any(f and f.startswith("partners.0.auth") for f in fields)
    assert all(p.location == "partners.yaml" for p in caught.value.problems)


def test_duplicate_ids_and_unknown_partner(tmp_path: Path) -> None:
    with pytest.raises(PartnerConfigError) as caught:
        parse_partners({"partners": [GOOD, GOOD]}, "t", {})
    assert any("appears twice" in line for line in caught.value.lines())
    partners = parse_partners({"partners": [GOOD]}, "t", {})
    with pytest.raises(PartnerConfigError, match="known: p1"):
        select(partners, "nope")
    missing = tmp_path / "none.yaml"
    with pytest.raises(PartnerConfigError, match="cannot read"):
        load_partners(missing, {})
    broken = tmp_path / "broken.yaml"
    broken.write_text("partners: [\n")
    with pytest.raises(PartnerConfigError, match="not valid YAML"):
        load_partners(broken, {})


def test_bearer_token_comes_from_the_environment_only() -> None:
    p = parse_partners({"partners": [{**GOOD, "auth": {"type": "bearer", "token_env": "TOK"}}]}, "t", {})[0]
    assert p.auth.type == "bearer"
    assert bearer_token(p.auth, {"TOK": "s3cret"}) == "s3cret"  # type: ignore[arg-type]
    with pytest.raises(PartnerConfigError, match="TOK"):
        bearer_token(p.auth, {})  # type: ignore[arg-type]
