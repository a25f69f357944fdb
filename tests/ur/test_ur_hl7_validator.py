"""The HL7 FHIR validator (tests/servers/hl7-validator/) accepts utilization-review packages with zero errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from adapter import fhir
from adapter.fhirxml.writer import to_xml
from adapter.pipeline import MappedChart
from adapter.sync.partners import Partner
from tests.servers.fixtures import Hl7Validator
from tests.servers.peers import message_id
from tests.ur.conftest import MemoryAudit, RequestFactory, cl02_with

pytestmark = [pytest.mark.integration]


def test_ur_packages_validate_without_errors(
    hl7_validator: Hl7Validator,
    clinic_charts: dict[str, MappedChart],
    partners: dict[str, Partner],
    make_request: RequestFactory,
    tmp_path: Path,
) -> None:
    from adapter.ur import build_package

    granite = partners["granite-mutual"]
    packages = {
        "cl-08-mh": build_package(clinic_charts["cl-08"], granite, make_request("cl-08"), audit=MemoryAudit()),
        "cl-06-mh": build_package(clinic_charts["cl-06"], granite, make_request("cl-06"), audit=MemoryAudit()),
        # Part 2 data released under a payment consent: the Claim, the 2.32 notice and the consent copy.
        "cl-02-sud": build_package(
            cl02_with("cl-02-payment-consent-granite.json"),
            granite,
            make_request("cl-02", "asam-2.1", instant=datetime.fromisoformat("2026-06-01T10:00:00-04:00")),
            audit=MemoryAudit(),
        ),
    }
    files = []
    for name, package in packages.items():
        (tmp_path / f"{name}.json").write_bytes(fhir.dumps(package.bundle, pretty=True))
        (tmp_path / f"{name}.xml").write_bytes(to_xml(package.bundle, pretty=True))
        files += [tmp_path / f"{name}.json", tmp_path / f"{name}.xml"]
    run = hl7_validator.run(files)
    assert len(run.results) == len(files)
    errors = [(r.file, message_id(i), i.get("diagnostics")) for r, i in run.issues("fatal", "error")]
    assert not errors
