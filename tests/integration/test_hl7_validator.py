"""Everything `bh-adapter map` emits for fixtures/clinic passes the HL7 instance validator (docs/conformance.md).

One JVM validates it all: the 16 client Bundles as JSON and as XML, the Bulk Data NDJSON files, and a few
control resources that show the validator's configuration still catches what it must (required bindings,
invariants, unknown elements) and lets through what it cannot check offline (LOINC codes, US Core profiles).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import FIXTURES, ROOT
from tests.servers.fixtures import Hl7Validator
from tests.servers.peers import HL7_VALIDATOR_DIR, Validated, ValidatorRun, message_id

pytestmark = [pytest.mark.integration, pytest.mark.hl7_validator]

FORMATS = ("json", "xml", "ndjson")
KEPT_WARNINGS = HL7_VALIDATOR_DIR / "kept-warnings.yaml"
CONFORMANCE_DOC = ROOT / "docs" / "conformance.md"
LOINC = "http://loinc.org"
US_CORE_OBSERVATION = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment"


@dataclass(frozen=True)
class KeptWarning:
    id: str
    message_id: str
    diagnostics: re.Pattern[str] | None
    reason: str

    def matches(self, issue: Mapping[str, Any]) -> bool:
        if message_id(issue) != self.message_id:
            return False
        return self.diagnostics is None or bool(self.diagnostics.search(str(issue.get("diagnostics", ""))))


def kept_warnings() -> list[KeptWarning]:
    entries = yaml.safe_load(KEPT_WARNINGS.read_text(encoding="utf-8"))
    return [
        KeptWarning(
            e["id"], e["message_id"], re.compile(e["diagnostics"]) if e.get("diagnostics") else None, e["reason"]
        )
        for e in entries
    ]


# ---------------------------------------------------------------- controls: what the configuration must catch


def _observation(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "control",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "44261-6"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-10-21",
        "performer": [{"reference": "Practitioner/pr1"}],
        "valueQuantity": {"value": 12, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"},
        **extra,
    }


def _patient_speaking(tag: str, resource_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": tag}]}}],
    }


CONTROLS: dict[str, dict[str, Any]] = {
    "required-binding": _observation(status="bogus"),
    "invariant-obs-6": _observation(dataAbsentReason={"text": "declined"}),
    "unknown-element": _observation(bogusElement=1),
    "unknown-loinc-code": _observation(code={"coding": [{"system": LOINC, "code": "99999-0"}]}),
    "unknown-us-core-profile": _observation(meta={"profile": [US_CORE_OBSERVATION]}),
    "language-vi": _patient_speaking("vi", "speaks-vi"),
    "language-invalid": _patient_speaking("not a tag", "speaks-invalid"),
}


# ---------------------------------------------------------------- one run for the module


def _map(out: Path, fmt: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapter", "map", str(FIXTURES / "clinic"), "--out", str(out), "--format", fmt],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    files = {}
    for fmt in FORMATS:
        out = tmp_path_factory.mktemp(f"mapped-{fmt}")
        _map(out, fmt)
        files[fmt] = sorted(out.iterdir())
    return files


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("controls")
    paths = {}
    for name, resource in CONTROLS.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(orjson.dumps(resource))
    return paths


@pytest.fixture(scope="module")
def run(hl7_validator: Hl7Validator, mapped: dict[str, list[Path]], controls: dict[str, Path]) -> ValidatorRun:
    return hl7_validator.run([*(p for fmt in FORMATS for p in mapped[fmt]), *controls.values()])


def results_of(run: ValidatorRun, files: Sequence[Path]) -> list[Validated]:
    wanted = {str(f) for f in files}
    return [r for r in run.results if r.file in wanted]


def describe(result: Validated, issue: Mapping[str, Any]) -> str:
    where = (issue.get("expression") or issue.get("location") or ["?"])[0]
    line = f":{result.line}" if result.line else ""
    return f"{Path(result.file).name}{line} {result.resource} @ {where}: {issue.get('diagnostics')}"


# ---------------------------------------------------------------- the mapped output


def test_every_mapped_resource_was_validated(run: ValidatorRun, mapped: dict[str, list[Path]]) -> None:
    ndjson_lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in mapped["ndjson"])
    in_bundles = {
        (entry["resource"]["resourceType"], entry["resource"]["id"])
        for p in mapped["json"]
        for entry in orjson.loads(p.read_bytes())["entry"]
    }
    assert len(in_bundles) == ndjson_lines  # NDJSON holds each shared resource (clinic, staff) once
    assert len(results_of(run, mapped["json"])) == len(mapped["json"]) == 16
    assert len(results_of(run, mapped["xml"])) == len(mapped["xml"]) == 16
    assert len(results_of(run, mapped["ndjson"])) == ndjson_lines
    assert run.summary["resources"] == len(run.results) == 32 + ndjson_lines + len(CONTROLS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_mapped_output_has_no_errors(run: ValidatorRun, mapped: dict[str, list[Path]], fmt: str) -> None:
    found = [
        describe(result, issue) for result in results_of(run, mapped[fmt]) for issue in result.issues("error", "fatal")
    ]
    assert found == [], f"{len(found)} error(s):\n" + "\n".join(found[:40])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_warning_is_a_kept_one(run: ValidatorRun, mapped: dict[str, list[Path]], fmt: str) -> None:
    kept = kept_warnings()
    unexplained = Counter(
        f"{message_id(issue)}: {describe(result, issue)}"
        for result in results_of(run, mapped[fmt])
        for issue in result.issues("warning")
        if not any(k.matches(issue) for k in kept)
    )
    assert not unexplained, (
        f"warnings not in {KEPT_WARNINGS.name} (fix the mapping, or keep them there and in {CONFORMANCE_DOC.name}):\n"
        + "\n".join(f"{n} x {text}" for text, n in unexplained.most_common(30))
    )


def test_every_kept_warning_still_occurs(run: ValidatorRun, mapped: dict[str, list[Path]]) -> None:
    warnings = [issue for result in results_of(run, mapped["ndjson"]) for issue in result.issues("warning")]
    stale = [k.id for k in kept_warnings() if not any(k.matches(issue) for issue in warnings)]
    assert stale == [], f"entries of {KEPT_WARNINGS.name} that match no warning any more: remove them"


def test_kept_warnings_are_documented() -> None:
    doc = CONFORMANCE_DOC.read_text(encoding="utf-8")
    missing = [k.id for k in kept_warnings() if f"`{k.id}`" not in doc]
    assert missing == [], f"{CONFORMANCE_DOC.name} does not explain: {missing}"


# ---------------------------------------------------------------- the controls


def control_issues(run: ValidatorRun, controls: dict[str, Path], name: str, *severities: str) -> list[Any]:
    (result,) = results_of(run, [controls[name]])
    return result.issues(*severities)


def test_required_binding_to_a_core_value_set_is_an_error(run: ValidatorRun, controls: dict[str, Path]) -> None:
    issues = control_issues(run, controls, "required-binding", "error")
    assert any(issue.get("expression") == ["Observation.status"] for issue in issues), issues


def test_invariant_is_an_error(run: ValidatorRun, controls: dict[str, Path]) -> None:
    issues = control_issues(run, controls, "invariant-obs-6", "error")
    assert any("obs-6" in str(issue.get("diagnostics")) for issue in issues), issues


def test_unknown_element_is_an_error(run: ValidatorRun, controls: dict[str, Path]) -> None:
    issues = control_issues(run, controls, "unknown-element", "error")
    assert any("bogusElement" in str(issue.get("diagnostics")) for issue in issues), issues


def test_external_code_system_is_not_checked(run: ValidatorRun, controls: dict[str, Path]) -> None:
    """LOINC is not available offline: a made-up LOINC code is neither an error nor a warning."""
    assert control_issues(run, controls, "unknown-loinc-code", "error", "fatal") == []
    warnings = control_issues(run, controls, "unknown-loinc-code", "warning")
    no_narrative, annotation_unit = "DomainResource#dom-6", "TYPE_SPECIFIC_CHECKS_DT_QTY_UCUM_ANNOTATIONS"
    assert all(message_id(i).endswith((no_narrative, annotation_unit)) for i in warnings), warnings


def test_unknown_profile_is_a_warning_not_an_error(run: ValidatorRun, controls: dict[str, Path]) -> None:
    assert control_issues(run, controls, "unknown-us-core-profile", "error", "fatal") == []
    warnings = control_issues(run, controls, "unknown-us-core-profile", "warning")
    assert any(message_id(i) == "Validation_VAL_Profile_Unknown" for i in warnings)


def test_language_tags(run: ValidatorRun, controls: dict[str, Path]) -> None:
    """A BCP-47 tag outside Common Languages is fine (preferred binding); a malformed one is an error."""
    assert control_issues(run, controls, "language-vi", "error", "fatal") == []
    assert control_issues(run, controls, "language-invalid", "error")
