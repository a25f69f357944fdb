"""pytest plugin: real FHIR peers for integration tests.

Enable it from tests/conftest.py with ``pytest_plugins = ["tests.servers.fixtures"]``.

Fixtures
    medplum_peer, sekmet_peer   session scope: started once (or attached via BH_MEDPLUM_URL / BH_SEKMET_URL),
                                stopped at the end; data is NOT reset between tests.
    fresh_medplum, fresh_sekmet function scope: the same peer, emptied before the test.
    fhir_peer                   function scope, parametrized over both peers (ids "medplum", "sekmet"), emptied
                                before the test. ``@pytest.mark.peer_features("invariants", ...)`` keeps only the
                                peers that support every named feature (see peers.MEDPLUM_FEATURES / SEKMET_FEATURES).

Any test using one of these fixtures gets the ``integration`` marker automatically, so
``pytest -m "not integration"`` runs the fast unit tests alone. A peer that cannot start makes its tests
ERROR (never skip) with a one-line reason followed by the peer's log tail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.peers import SPECS, Peer, PeerProcess, PeerStartError, start_peer

PEER_FIXTURES = {"medplum": "medplum_peer", "sekmet": "sekmet_peer"}
INTEGRATION_FIXTURES = frozenset({*PEER_FIXTURES.values(), "fresh_medplum", "fresh_sekmet", "fhir_peer"})


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml declares `integration` too; declaring it here keeps the plugin usable on its own.
    config.addinivalue_line("markers", "integration: talks to a real FHIR server started by the tests")
    config.addinivalue_line(
        "markers", "peer_features(*names): run a fhir_peer test only on peers that support every named feature"
    )


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
    names = [name for name, spec in SPECS.items() if wanted <= spec.features]
    if not names:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no peer supports all of {sorted(wanted)}")
    metafunc.parametrize("fhir_peer", names, indirect=True, ids=names)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
