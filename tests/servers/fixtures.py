"""pytest plugin: real FHIR peers for integration tests.

Enable it from tests/conftest.py with ``pytest_plugins = ["tests.servers.fixtures"]``.

Fixtures
    medplum_peer, sekmet_peer   session scope: started once (or attached via BH_MEDPLUM_URL / BH_SEKMET_URL),
                                stopped at the end; data is NOT reset between tests.
    fresh_medplum, fresh_sekmet function scope: the same peer, emptied before the test.
    fhir_peer                   function scope, parametrized over both peers (ids "medplum", "sekmet"), emptied
                                before the test. ``@pytest.mark.peer_features("invariants", ...)`` keeps only the
                                peers that support every named feature (see peers.MEDPLUM_FEATURES / SEKMET_FEATURES).

    hapi_peer, fresh_hapi       HAPI FHIR's JPA server (tests/servers/hapi/): session / function scope like the
                                others, but only for tests that name it; 25-90 s to start, 1-2 GB. A test
                                module that sets ``FHIR_PEERS = ("hapi",)`` gets its ``fhir_peer`` tests run on
                                HAPI instead of the default peers.
    hl7_validator               session scope: runs the HL7 instance validator (tests/servers/hl7-validator/) over
                                files, one JVM per call: ``hl7_validator.run(paths) -> ValidatorRun``.

Any test using one of these fixtures gets the ``integration`` marker automatically (and HAPI's also ``hapi``), so
``pytest -m "not integration"`` runs the fast unit tests alone. A peer that cannot start makes its tests
ERROR (never skip) with a one-line reason followed by the peer's log tail.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.peers import (
    HL7_VALIDATOR_JAR,
    INSTALL_HINT,
    OPT_IN_SPECS,
    SPECS,
    Peer,
    PeerProcess,
    PeerStartError,
    ValidatorError,
    ValidatorRun,
    java_command,
    run_hl7_validator,
    start_peer,
)

PEER_FIXTURES = {"medplum": "medplum_peer", "sekmet": "sekmet_peer", "hapi": "hapi_peer"}
HAPI_FIXTURES = frozenset({"hapi_peer", "fresh_hapi"})
INTEGRATION_FIXTURES = frozenset(
    {*PEER_FIXTURES.values(), "fresh_medplum", "fresh_sekmet", "fhir_peer", "hl7_validator", *HAPI_FIXTURES}
)


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml declares `integration` too; declaring it here keeps the plugin usable on its own.
    config.addinivalue_line("markers", "integration: talks to a real FHIR server started by the tests")
    config.addinivalue_line(
        "markers", "peer_features(*names): run a fhir_peer test only on peers that support every named feature"
    )
    config.addinivalue_line(
        "markers", "hapi: needs the HAPI FHIR JPA server peer (Java; 25-90 s to start once per session, 1-2 GB)"
    )
    config.addinivalue_line("markers", "hl7_validator: runs the HL7 instance validator (Java; ~1 min per full run)")


def _session_peer(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    try:
        started: PeerProcess | Peer | str = start_peer(name, tmp_path_factory.mktemp(f"peer-{name}"))
    except PeerStartError as exc:
        started = str(exc)
    if isinstance(started, str):  # failed outside the except block, so the report is not a chained traceback
        pytest.fail(started, pytrace=False)
    if isinstance(started, PeerProcess):
        try:
            yield started.peer
        finally:
            started.stop()
    else:
        yield started


@pytest.fixture(scope="session")
def medplum_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """The Medplum-engine peer (FHIR base .../fhir/R4), shared by the whole session."""
    yield from _session_peer("medplum", tmp_path_factory)


@pytest.fixture(scope="session")
def sekmet_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """The sekmet-fhir peer (FHIR base .../fhir), shared by the whole session."""
    yield from _session_peer("sekmet", tmp_path_factory)


@pytest.fixture(scope="session")
def hapi_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """HAPI FHIR's JPA server (FHIR base .../fhir), H2 in memory, shared by the whole session."""
    yield from _session_peer("hapi", tmp_path_factory)


@pytest.fixture
def fresh_hapi(hapi_peer: Peer) -> Peer:
    hapi_peer.reset()
    return hapi_peer


@pytest.fixture
def fresh_medplum(medplum_peer: Peer) -> Peer:
    medplum_peer.reset()
    return medplum_peer


@pytest.fixture
def fresh_sekmet(sekmet_peer: Peer) -> Peer:
    sekmet_peer.reset()
    return sekmet_peer


@pytest.fixture
def fhir_peer(request: pytest.FixtureRequest) -> Peer:
    """One of the peers (see pytest_generate_tests), emptied before the test."""
    peer: Peer = request.getfixturevalue(PEER_FIXTURES[request.param])
    peer.reset()
    return peer


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fhir_peer" not in metafunc.fixturenames:
        return
    wanted: set[str] = set()
    for marker in metafunc.definition.iter_markers("peer_features"):
        wanted.update(marker.args)
    # A module may choose its peers by name, e.g. FHIR_PEERS = ("hapi",) to run imported fhir_peer tests on HAPI.
    chosen = getattr(metafunc.module, "FHIR_PEERS", None)
    specs = {**SPECS, **OPT_IN_SPECS}
    candidates = {name: specs[name] for name in chosen} if chosen else SPECS
    names = [name for name, spec in candidates.items() if wanted <= spec.features]
    if not names:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no peer supports all of {sorted(wanted)}")
    params = [pytest.param(name, marks=[pytest.mark.hapi] if name in OPT_IN_SPECS else []) for name in names]
    metafunc.parametrize("fhir_peer", params, indirect=True, ids=names)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixturenames = getattr(item, "fixturenames", ())
        if INTEGRATION_FIXTURES.intersection(fixturenames):
            item.add_marker(pytest.mark.integration)
        if "hl7_validator" in fixturenames:
            item.add_marker(pytest.mark.hl7_validator)
        if HAPI_FIXTURES.intersection(fixturenames):
            item.add_marker(pytest.mark.hapi)


# ---------------------------------------------------------------- HL7 reference validator


@dataclass(frozen=True)
class Hl7Validator:
    """Runs tests/servers/hl7-validator over files; each run() is one JVM with its own log under `log_root`."""

    log_root: Path

    def run(self, paths: Sequence[Path], *options: str) -> ValidatorRun:
        log_dir = self.log_root / f"run-{len(list(self.log_root.iterdir())) + 1}"
        log_dir.mkdir()
        return run_hl7_validator(paths, log_dir, *options)


@pytest.fixture(scope="session")
def hl7_validator(tmp_path_factory: pytest.TempPathFactory) -> Hl7Validator:
    """The HL7 instance validator, checked to be built and runnable (else the test errors with one line)."""
    reason = ""
    try:
        java_command()
    except ValidatorError as exc:
        reason = f"HL7 validator cannot run: {exc}"
    if not reason and not HL7_VALIDATOR_JAR.exists():
        reason = f"HL7 validator is not built ({HL7_VALIDATOR_JAR} missing): {INSTALL_HINT}"
    if reason:
        pytest.fail(reason, pytrace=False)
    return Hl7Validator(tmp_path_factory.mktemp("hl7-validator"))
