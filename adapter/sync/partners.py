"""The partners file: who the adapter syncs with, how, and as whom (schema in docs/partners.md).

Loading is pure apart from reading the file: the environment is passed in (``env``), never read here, and is
used only for ``${VAR}`` / ``${VAR:-default}`` in ``base_url`` and for ``token_env`` secrets, which are looked
up when a client is built (``bearer_token``) so a partners file never holds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapter.errors import PartnerConfigError, Problem

Role = Literal["psychiatry", "primary-care", "hospital", "insurer", "sandbox"]
WriteMode = Literal["auto", "transaction", "batch", "single"]
IdPolicy = Literal["auto", "client-ids", "conditional"]
# Purposes of use (http://terminology.hl7.org/CodeSystem/v3-ActReason), the same list as a consent record's.
Purpose = Literal[
    "TREAT", "ETREAT", "HPAYMT", "HOPERAT", "CAREMGT", "COVERAGE", "HRESCH", "PUBHLTH", "HLEGAL", "PATRQT"
]
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
PULLABLE = frozenset({"Task", "MedicationRequest", "Condition"})

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NPI = re.compile(r"^\d{10}$")
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipient(_Strict):
    """Who receives the data, as the consent release point sees it."""

    organization_npi: str = Field(description="NPI of the receiving organization (10 digits)")
    name: str | None = None

    @field_validator("organization_npi")
    @classmethod
    def _npi(cls, value: str) -> str:
        if not _NPI.match(value) or not _npi_check_digit_ok(value):
            raise ValueError(f"{value!r} is not a valid NPI (10 digits with a Luhn check digit)")
        return value

    def identifier(self) -> dict[str, str]:
        return {"system": NPI_SYSTEM, "value": self.organization_npi}


def _npi_check_digit_ok(npi: str) -> bool:
    """NPI check digit: Luhn over the prefix 80840 + the first 9 digits (CMS NPI check digit rules)."""
    digits = [int(d) for d in "80840" + npi[:9]]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


class Attested(_Strict):
    """Context the clinic attests for every disclosure to this partner (the consent engine relies on it)."""

    treating_relationship: bool = Field(default=False, description="the partner treats the clinic's clients")
    recipient_is_medical_personnel: bool = False


class NoAuth(_Strict):
    type: Literal["none"] = "none"


class BearerAuth(_Strict):
    type: Literal["bearer"]
    token_env: str = Field(description="environment variable holding the token (never the token itself)")


class SmartBackendAuth(_Strict):
    """SMART Backend Services: client-credentials grant with a signed JWT assertion (private_key_jwt)."""

    type: Literal["smart-backend"]
    token_url: str
    client_id: str
    scope: str = "system/*.rs"
    algorithm: Literal["RS384", "ES384"] = "RS384"
    key_id: str | None = Field(default=None, description="`kid` of the key in the JWKS the partner registered")
    private_key_file: Path | None = None
    private_key_env: str | None = Field(default=None, description="environment variable holding the PEM key")
    assertion_lifetime_s: int = Field(default=300, ge=10, le=300, description="SMART caps exp at 5 minutes")

    @model_validator(mode="after")
    def _one_key(self) -> SmartBackendAuth:
        if (self.private_key_file is None) == (self.private_key_env is None):
            raise ValueError("give exactly one of private_key_file or private_key_env")
        return self


Auth = Annotated[NoAuth | BearerAuth | SmartBackendAuth, Field(discriminator="type")]


class Timeouts(_Strict):
    connect_s: float = Field(default=5.0, gt=0)
    read_s: float = Field(default=30.0, gt=0)
    write_s: float = Field(default=30.0, gt=0)
    pool_s: float = Field(default=10.0, gt=0)


class RateLimit(_Strict):
    requests_per_second: float = Field(default=20.0, gt=0)
    burst: int = Field(default=10, ge=1)


class Retry(_Strict):
    """In-call retries (tenacity) and, once they are used up, how often the outbox tries the item again."""

    attempts: int = Field(default=4, ge=1, le=20, description="tries per request before the item is rescheduled")
    initial_wait_s: float = Field(default=0.5, ge=0)
    max_wait_s: float = Field(default=30.0, ge=0, description="cap of one backoff wait (and of Retry-After)")
    jitter_s: float = Field(default=0.5, ge=0)
    item_attempts: int = Field(default=12, ge=1, description="item runs before it goes dead")
    item_max_wait_s: float = Field(default=3600.0, ge=0, description="cap of the wait between two item runs")


class Partner(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str
    role: Role
    base_url: str = Field(description="FHIR base URL, no trailing slash")
    recipient: Recipient
    purpose_of_use: Purpose = "TREAT"
    attested: Attested = Field(default_factory=Attested)
    auth: Auth = Field(default_factory=NoAuth)
    push: tuple[str, ...] | Literal["all", "none"] = "all"
    pull: tuple[str, ...] = ()
    write_mode: WriteMode = "auto"
    ids: IdPolicy = Field(default="auto", description="PUT to the adapter's ids, or conditional on identifiers")
    max_entries: int = Field(default=50, ge=1, le=1000, description="entries per transaction/batch Bundle")
    max_conditional_entries: int = Field(default=8, ge=1, le=1000, description="per Bundle in conditional mode")
    page_size: int = Field(default=100, ge=1, le=1000, description="_count of pull searches")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retry: Retry = Field(default_factory=Retry)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("pull")
    @classmethod
    def _pullable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - PULLABLE)
        if unknown:
            raise ValueError(f"cannot pull {unknown}: pull supports {sorted(PULLABLE)}")
        return value

    @field_validator("push")
    @classmethod
    def _pushable(cls, value: tuple[str, ...] | str) -> tuple[str, ...] | str:
        if isinstance(value, tuple):
            bad = [t for t in value if not _TYPE_NAME.match(t)]
            if bad:
                raise ValueError(f"not resource type names: {bad}")
        return value

    def pushes(self, resource_type: str) -> bool:
        if self.push == "all":
            return True
        if self.push == "none":
            return False
        return resource_type in self.push


class PartnersFile(_Strict):
    partners: tuple[Partner, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> PartnersFile:
        seen: set[str] = set()
        for partner in self.partners:
            if partner.id in seen:
                raise ValueError(f"partner id {partner.id!r} appears twice")
            seen.add(partner.id)
        return self


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` and ``${VAR:-default}``; an unset variable without a default is an error."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if env.get(name):
            return env[name]
        if default is not None:
            return default
        raise PartnerConfigError(f"environment variable {name} is not set (used in the partners file)")

    return _ENV_REF.sub(one, text)


def parse_partners(data: object, source: str, env: Mapping[str, str]) -> tuple[Partner, ...]:
    """Validate parsed YAML; every problem is reported at once, located by its path in the file."""
    if isinstance(data, dict) and isinstance(data.get("partners"), list):
        for entry in data["partners"]:
            if isinstance(entry, dict) and isinstance(entry.get("base_url"), str):
                entry["base_url"] = expand_env(entry["base_url"], env)
    try:
        return PartnersFile.model_validate(data).partners
    except ValidationError as exc:
        problems = [
            Problem(err["msg"], location=source, field=".".join(str(p) for p in err["loc"]) or None)
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise PartnerConfigError(f"{source}: invalid partners file", problems) from None


def load_partners(path: Path, env: Mapping[str, str]) -> tuple[Partner, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PartnerConfigError(f"cannot read partners file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # e.g. saved as Latin-1 or UTF-16 by an editor
        raise PartnerConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): save it as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PartnerConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_partners(data, str(path), env)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: the problem and where (PyYAML's own text spans several lines and quotes the file)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else str(problem)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: YAML says keys are unique, and PyYAML would keep
    the last silently (a second `push:` or `auth:` overriding the first unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def select(partners: tuple[Partner, ...], partner_id: str | None) -> tuple[Partner, ...]:
    """All partners, or the one named (an unknown id is a usage error listing the known ones)."""
    if partner_id is None:
        return partners
    chosen = tuple(p for p in partners if p.id == partner_id)
    if not chosen:
        known = ", ".join(p.id for p in partners)
        raise PartnerConfigError(f"no partner {partner_id!r} in the partners file (known: {known})")
    return chosen


def bearer_token(auth: BearerAuth, env: Mapping[str, str]) -> str:
    token = env.get(auth.token_env, "")
    if not token:
        raise PartnerConfigError(f"environment variable {auth.token_env} (bearer token) is not set")
    return token


def private_key_pem(auth: SmartBackendAuth, env: Mapping[str, str], base_dir: Path | None = None) -> bytes:
    if auth.private_key_env is not None:
        pem = env.get(auth.private_key_env, "")
        if not pem:
            raise PartnerConfigError(f"environment variable {auth.private_key_env} (private key) is not set")
        return pem.encode()
    assert auth.private_key_file is not None  # noqa: S101 - guaranteed by SmartBackendAuth._one_key
    path = auth.private_key_file
    if not path.is_absolute() and base_dir is not None:  # relative to the partners file
        path = base_dir / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PartnerConfigError(f"cannot read private key {path}: {exc.strerror}") from None
