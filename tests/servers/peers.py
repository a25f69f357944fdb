"""Start, probe, reset and stop the FHIR test peers (no pytest here; fixtures.py wraps this).

Each peer runs in its own process group on a free 127.0.0.1 port, with its stdout/stderr in a log file.
Orphans are prevented three ways: the fixture finalizer stops the peer; an ``atexit`` hook stops whatever is
still running (e.g. after Ctrl-C); and the peer itself exits when its stdin pipe closes, which also happens
when the test process is killed outright (SIGKILL runs no Python code, but the kernel closes the pipe).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import httpx

SERVERS_DIR = Path(__file__).resolve().parent
MEDPLUM_DIR = SERVERS_DIR / "medplum"
SEKMET_DIR = SERVERS_DIR / "sekmet"
HAPI_DIR = SERVERS_DIR / "hapi"
HAPI_JAR = HAPI_DIR / "target" / "bh-hapi-server.jar"
INSTALL_HINT = "run `bash tests/servers/install.sh`"
RESET_PATH = "/__admin/reset"
DEFAULT_START_TIMEOUT_S = 60.0  # BH_PEER_START_TIMEOUT overrides
STOP_TIMEOUT_S = 5.0

_HTTP = httpx.Client(timeout=30.0)  # for reset(); one client, not one per call

# What each peer really does, so tests only ask a peer for what it supports (see docs/testing.md).
MEDPLUM_FEATURES = frozenset({"required-bindings", "invariants", "delete-history"})
SEKMET_FEATURES = frozenset({"integer-versions", "xml", "delete-history"})
# HAPI's JPA server validates on $validate only (as the public sandbox: no request validation), and refuses
# a reference to a resource it does not hold (HAPI-1094).
HAPI_FEATURES = frozenset({"integer-versions", "xml", "delete-history", "referential-integrity"})
HAPI_START_TIMEOUT_S = 240.0  # 25-45 s alone on 2 cores; up to 90 s seen while other suites ran
HAPI_HEAP = "-Xmx2g"  # about 1 GB resident after start, more under a full conformance run


class PeerStartError(RuntimeError):
    """A peer could not be started; the message ends with the tail of its log."""


@dataclass(frozen=True)
class Peer:
    """A running FHIR test peer as tests see it."""

    name: str
    base_url: str  # FHIR base, no trailing slash
    root_url: str  # server root, for the non-FHIR admin routes
    features: frozenset[str]
    log_path: Path | None = None
    startup_seconds: float | None = None  # spawn to first 200 from /metadata

    def supports(self, feature: str) -> bool:
        return feature in self.features

    def reset(self) -> None:
        """Delete every resource, version and history entry on the peer."""
        response = _HTTP.post(f"{self.root_url}{RESET_PATH}")
        if response.status_code != 204:
            raise RuntimeError(f"{self.name} peer reset failed: HTTP {response.status_code} {response.text[:300]}")

    def log_tail(self, lines: int = 25) -> str:
        return log_tail(self.log_path, lines)


@dataclass(eq=False)  # identity semantics: instances live in the _RUNNING set
class PeerProcess:
    """A peer process this test session started."""

    peer: Peer
    process: subprocess.Popen[bytes]
    log_file: IO[bytes] | None = field(repr=False, default=None)

    def stop(self) -> None:
        """Close stdin (the peer exits by itself), then SIGTERM and finally SIGKILL its process group."""
        proc = self.process
        if proc.stdin and not proc.stdin.closed:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_TIMEOUT_S)
        if self.log_file:
            self.log_file.close()
        _RUNNING.discard(self)


_RUNNING: set[PeerProcess] = set()


@atexit.register
def _stop_all() -> None:
    for running in list(_RUNNING):
        running.stop()
    _HTTP.close()


def log_tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(encoding="utf-8", errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_command() -> list[str]:
    """The node binary plus the flags Medplum 5.x needs on Node 20/21 (global WebSocket)."""
    node = os.environ.get("BH_NODE") or shutil.which("node")
    if not node:
        raise PeerStartError(f"medplum peer: no `node` on PATH (Node >= 20 needed; {INSTALL_HINT})")
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
        major = int(version.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise PeerStartError(f"medplum peer: cannot tell the version of {node}: {exc}") from exc
    if major < 20:
        raise PeerStartError(f"medplum peer: Node {version.strip()} is too old (need >= 20)")
    if major >= 22:
        return [node]
    return [node, "--experimental-websocket", "--disable-warning=ExperimentalWarning"]


def medplum_command(port: int) -> list[str]:
    if not (MEDPLUM_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise PeerStartError(f"medplum peer is not installed ({MEDPLUM_DIR / 'node_modules'} missing): {INSTALL_HINT}")
    server = str(MEDPLUM_DIR / "server.mjs")
    return [*node_command(), server, "--port", str(port), "--exit-on-stdin-eof"]


def sekmet_python() -> Path:
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    return SEKMET_DIR / ".venv" / bindir / ("python.exe" if sys.platform == "win32" else "python")


def sekmet_command(port: int) -> list[str]:
    python = sekmet_python()
    if not python.exists():
        raise PeerStartError(f"sekmet peer is not installed ({python} missing): {INSTALL_HINT}")
    return [str(python), str(SEKMET_DIR / "serve.py"), "--port", str(port), "--exit-on-stdin-eof"]


def hapi_command(port: int) -> list[str]:
    if not HAPI_JAR.exists():
        raise PeerStartError(f"hapi peer is not built ({HAPI_JAR} missing): {INSTALL_HINT}")
    try:
        java = java_command()
    except ValidatorError as exc:  # same Java requirement as the validator; say it as a peer failure
        raise PeerStartError(f"hapi peer: {exc}") from exc
    return [*java, HAPI_HEAP, "-jar", str(HAPI_JAR), "--port", str(port), "--exit-on-stdin-eof"]


@dataclass(frozen=True)
class PeerSpec:
    name: str
    fhir_path: str  # FHIR base path on the server
    command: Callable[[int], list[str]]
    features: frozenset[str]
    url_env: str  # set it to use an already running peer instead of starting one
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S  # BH_PEER_START_TIMEOUT overrides


SPECS: Mapping[str, PeerSpec] = {
    "medplum": PeerSpec("medplum", "/fhir/R4", medplum_command, MEDPLUM_FEATURES, "BH_MEDPLUM_URL"),
    "sekmet": PeerSpec("sekmet", "/fhir", sekmet_command, SEKMET_FEATURES, "BH_SEKMET_URL"),
}
# Peers a test asks for by name only (a hapi_peer fixture, or a module's FHIR_PEERS): not in SPECS, so
# `fhir_peer` tests do not wait a minute for HAPI unless their module opts in (see fixtures.py).
OPT_IN_SPECS: Mapping[str, PeerSpec] = {
    "hapi": PeerSpec("hapi", "/fhir", hapi_command, HAPI_FEATURES, "BH_HAPI_URL", HAPI_START_TIMEOUT_S),
}
ALL_SPECS: Mapping[str, PeerSpec] = {**SPECS, **OPT_IN_SPECS}


def wait_ready(base_url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll [base]/metadata until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise PeerStartError(f"exited with code {process.returncode} before answering /metadata")
            try:
                response = client.get(f"{base_url}/metadata")
                if response.status_code == 200:
                    return
                last_error = f"/metadata answered HTTP {response.status_code}"
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
    raise PeerStartError(f"no /metadata within {timeout:.0f} s ({last_error})")


def external_peer(spec: PeerSpec, url: str) -> Peer:
    """A peer someone started by hand (BH_MEDPLUM_URL / BH_SEKMET_URL = its FHIR base)."""
    base = url.rstrip("/")
    root = base[: -len(spec.fhir_path)] if base.endswith(spec.fhir_path) else base
    try:
        wait_ready(base, 10.0)
    except PeerStartError as exc:
        raise PeerStartError(f"{spec.name} peer at {base} (from ${spec.url_env}): {exc}") from exc
    return Peer(spec.name, base, root, spec.features)


def start_peer(name: str, log_dir: Path | None = None, *, attach: bool = True) -> PeerProcess | Peer:
    """Start peer `name` and wait until it serves /metadata (or, with `attach`, use the running peer that
    BH_MEDPLUM_URL / BH_SEKMET_URL / BH_HAPI_URL names).

    Returns a PeerProcess to stop later, or a bare Peer when attached to an external one.
    Raises PeerStartError with a one-line reason followed by the log tail.
    """
    spec = ALL_SPECS[name]
    if attach and (url := os.environ.get(spec.url_env)):
        return external_peer(spec, url)
    return spawn_peer(spec, log_dir or Path(tempfile.mkdtemp(prefix=f"bh-peer-{name}-")))


def spawn_peer(spec: PeerSpec, log_dir: Path, attempts: int = 3) -> PeerProcess:
    name = spec.name
    reason = ""
    command: list[str] = []
    log_path = log_dir / f"{name}.log"
    for attempt in range(1, attempts + 1):
        port = free_port()
        log_path = log_dir / f"{name}-{attempt}.log"
        command = spec.command(port)
        log_file = log_path.open("wb")
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=log_dir,  # sekmet writes relative to its working directory
            start_new_session=True,  # own process group: stop() kills the whole group
        )
        root = f"http://127.0.0.1:{port}"
        running = PeerProcess(Peer(name, root + spec.fhir_path, root, spec.features, log_path), process, log_file)
        _RUNNING.add(running)
        try:
            timeout = float(os.environ.get("BH_PEER_START_TIMEOUT", spec.start_timeout_s))
            wait_ready(running.peer.base_url, timeout, process)
            running.peer = replace(running.peer, startup_seconds=time.monotonic() - started)
            return running
        except PeerStartError as exc:
            running.stop()
            reason = str(exc)
            # A port taken between free_port() and bind is the one failure worth retrying.
            if "EADDRINUSE" in log_tail(log_path) or "address already in use" in log_tail(log_path).lower():
                continue
            break
    raise PeerStartError(
        f"{name} FHIR peer failed to start: {reason} (command: {' '.join(command)}; log {log_path})\n"
        f"--- last lines of {log_path.name} ---\n{log_tail(log_path)}"
    )


# ---------------------------------------------------------------- HL7 reference validator
# Not a server: a batch program (tests/servers/hl7-validator/) that validates files in one JVM and exits. It
# holds no port and needs no reset, so it is run, not started; a killed pytest leaves it to finish its batch.

HL7_VALIDATOR_DIR = SERVERS_DIR / "hl7-validator"
HL7_VALIDATOR_JAR = HL7_VALIDATOR_DIR / "target" / "bh-hl7-validator.jar"
JAVA_MIN_MAJOR = 17  # HAPI FHIR 8.x is built for Java 17
VALIDATOR_HEAP = "-Xmx2g"  # the R4 definitions plus caches peak at about 1.6 GB resident
VALIDATOR_TIMEOUT_S = 900.0


class ValidatorError(RuntimeError):
    """The HL7 validator could not run; the message ends with the tail of its log."""


@dataclass(frozen=True)
class Validated:
    """One resource the validator checked: a whole .json/.xml file (line None) or one NDJSON line."""

    file: str
    line: int | None
    resource: str  # "Type/id" of the top-level resource
    outcome: Mapping[str, Any]

    def issues(self, *severities: str) -> list[Mapping[str, Any]]:
        """Its OperationOutcome issues, only those of the given severities when any are given."""
        return [i for i in self.outcome.get("issue", []) if not severities or i.get("severity") in severities]


@dataclass(frozen=True)
class ValidatorRun:
    """What one run of the validator over a set of files found."""

    results: tuple[Validated, ...]
    summary: Mapping[str, Any]  # files, resources, fatal, error, warning, information, seconds (inside the JVM)
    log_path: Path
    seconds: float  # wall clock, JVM start included

    def issues(self, *severities: str) -> list[tuple[Validated, Mapping[str, Any]]]:
        return [(result, issue) for result in self.results for issue in result.issues(*severities)]


def message_id(issue: Mapping[str, Any]) -> str:
    """The validator's stable id of an issue's message (e.g. "Terminology_TX_NoValid_2_CC"), or ""."""
    for coding in issue.get("details", {}).get("coding", []):
        if coding.get("system") == "http://hl7.org/fhir/java-core-messageId":
            return str(coding.get("code", ""))
    return ""


def java_command() -> list[str]:
    """The java binary (BH_JAVA, else JAVA_HOME, else PATH), checked to be Java >= 17."""
    java = os.environ.get("BH_JAVA") or (
        str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    )
    if not java:
        raise ValidatorError(f"no `java` on PATH (Java >= {JAVA_MIN_MAJOR} needed; set BH_JAVA)")
    try:
        banner = subprocess.run([java, "-version"], capture_output=True, text=True, check=True, timeout=30).stderr
        version = banner.split('"')[1]
        major = int(version.split(".")[0])
    except (OSError, IndexError, ValueError, subprocess.SubprocessError) as exc:
        raise ValidatorError(f"cannot tell the version of {java}: {exc}") from exc
    if major < JAVA_MIN_MAJOR:
        raise ValidatorError(f"{java} is Java {version}, too old (need >= {JAVA_MIN_MAJOR}; set BH_JAVA)")
    return [java]


def run_hl7_validator(paths: Sequence[Path], log_dir: Path, *options: str) -> ValidatorRun:
    """Validate `paths` (.json, .xml: one resource each; .ndjson: one per line) in one JVM.

    `options` go to the program (e.g. "--unknown-code-system-severity", "warning"). Errors found in the files are
    results, not exceptions; ValidatorError means the validator itself could not run (not built, crashed).
    """
    if not HL7_VALIDATOR_JAR.exists():
        raise ValidatorError(f"HL7 validator is not built ({HL7_VALIDATOR_JAR} missing): {INSTALL_HINT}")
    command = [*java_command(), VALIDATOR_HEAP, "-jar", str(HL7_VALIDATOR_JAR), *options, *map(str, paths)]
    log_path = log_dir / "hl7-validator.log"
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        try:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file, timeout=VALIDATOR_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as exc:
            raise _validator_error(f"no result within {VALIDATOR_TIMEOUT_S:.0f} s", command, log_path) from exc
    seconds = time.monotonic() - started
    if done.returncode not in (0, 1):  # 0: no error issue, 1: some; anything else is a failure of the run
        raise _validator_error(f"exited with code {done.returncode}", command, log_path)
    lines = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines() if line.strip()]
    if not lines or "summary" not in lines[-1]:
        raise _validator_error("printed no summary line", command, log_path)
    results = tuple(
        Validated(row["file"], row["line"], row["resource"], row["outcome"]) for row in lines[:-1] if "file" in row
    )
    return ValidatorRun(results, lines[-1]["summary"], log_path, seconds)


def _validator_error(reason: str, command: Sequence[str], log_path: Path) -> ValidatorError:
    shown = " ".join(command[:4]) + (f" ... ({len(command) - 4} more)" if len(command) > 4 else "")
    return ValidatorError(
        f"HL7 validator failed: {reason} (command: {shown}; log {log_path})\n"
        f"--- last lines of {log_path.name} ---\n{log_tail(log_path)}"
    )
