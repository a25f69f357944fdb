"""Settings from the environment (prefix BH_) with embedded defaults that run the shipped fixtures as they are.

Nothing is read at import time: call get_settings() where a setting is needed (the CLI and the API do, once).
"""

from __future__ import annotations

import uuid
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapter.errors import Problem, UsageError
from adapter.fhir import ID_NAMESPACE
from adapter.mappings.context import DEFAULT_FHIR_BASE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BH_", env_file=None, extra="ignore", frozen=True)

    fhir_base: str = Field(DEFAULT_FHIR_BASE, description="base of fullUrls and of the clinic's identifier systems")
    id_namespace: uuid.UUID = Field(ID_NAMESPACE, description="uuid5 namespace of resource ids, one per clinic")
    recorded_at: AwareDatetime | None = Field(
        None, description="Provenance.recorded; default: the newest instant in each client's records"
    )
    database_url: str = Field("sqlite:///bh-adapter.db", description="SQLAlchemy URL of the adapter's store")
    output_dir: Path = Field(Path("out"), description="where `bh-adapter map` writes")
    strict_validation: bool = Field(
        False, description="also validate every resource with fhir.resources (slow; the reference validator)"
    )
    clinic_timezone: str = Field(
        "America/New_York",
        description="IANA time zone of the clinic: a date-only consent start or end is a day of its calendar",
    )
    log_level: str = "WARNING"
    partners_file: Path = Field(
        Path("partners/local-peers.yaml"), description="partners the service syncs with and answers (docs/partners.md)"
    )
    api_max_body_bytes: int = Field(5_000_000, gt=0, description="largest request body the API reads (413 above)")
    api_rate_per_minute: int = Field(600, gt=0, description="requests per minute per token (429 above)")
    api_rate_burst: int = Field(60, gt=0, description="requests a token may send at once before the rate applies")

    @field_validator("fhir_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError("the clinic's FHIR base must be an http(s) URL without query or fragment")
        return value

    @field_validator("clinic_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)") from None
        return value


@cache
def get_settings() -> Settings:
    """The settings of this process. A bad BH_ variable is a UsageError (exit 2) naming it, never its value."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            Problem(f"BH_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg'].removeprefix('Value error, ')}")
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise UsageError("invalid settings in the environment", problems) from None
