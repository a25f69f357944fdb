"""Sync throughput: the adapter's push path against a naive one-POST-per-resource loop.

    python bench/sync_throughput.py [N] [--peer-clients M] [--no-peers]

N synthetic clients (default 1,000; bench/map_throughput.py's generator: a client and a PHQ-9 each, plus the
shared directory). In one process and one run:

(a) adapter: records -> map -> consent release point (adapter.consent.enforce, audited to SQLite) -> the outbox
    ledger -> transaction Bundles of 100 entries (orjson bytes assembled per entry) -> one shared httpx client;
(b) naive: records -> map -> one keep-alive POST per resource (orjson bytes, no consent, no ledger).
In brackets, (a) again with a stand-in release that lets everything through: the cost of the consent stage; and
the floor: records -> map -> orjson -> dependency order -> the same Bundles, with no consent, audit or ledger at
all. floor/b is the most any full path can reach against this baseline on this machine.
A worker pushes its claimed outbox items (one client each) together: their resources share Bundles.

Both run first against a minimal loopback FHIR sink (a separate process that answers without storing, so the
client side is what is measured), then against the Medplum and sekmet test peers (M clients, default 100;
fresh peers, started here and stopped at the end). Prints resources/s and the ratio a/b for each target.
Figures are printed, never asserted: this is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from map_throughput import make_input  # noqa: E402 - the generator of the mapping benchmark

from adapter.consent import SqlAuditLog  # noqa: E402
from adapter.fhir import dumps  # noqa: E402
from adapter.pipeline import MappedChart, context, map_chart  # noqa: E402
from adapter.records.chart import assemble  # noqa: E402
from adapter.records.loader import parse_json  # noqa: E402
from adapter.settings import Settings  # noqa: E402
from adapter.sync.client import FhirClient, make_http_client  # noqa: E402
from adapter.sync.partners import parse_partners  # noqa: E402
from adapter.sync.plan import (  # noqa: E402
    Entry,
    bundle_bytes,
    client_id_request,
    dependency_groups,
    entry,
    packed_chunks,
)
from adapter.sync.push import Pusher, PushReport  # noqa: E402
from adapter.sync.release import Released, consent_release  # noqa: E402
from adapter.sync.store import open_store  # noqa: E402
from adapter.sync.worker import Worker  # noqa: E402

BUNDLE_SIZE = 100
BATCH_ITEMS = Worker.batch_items  # outbox items (clients) pushed together
NPI = "1234567893"  # the synthetic clinic's partner in this benchmark (a placeholder NPI)


# --- the sink: a separate process, raw asyncio HTTP/1.1, answers without storing ---------------------------


def run_sink() -> None:
    capability = orjson.dumps(
        {
            "resourceType": "CapabilityStatement",
            "fhirVersion": "4.0.1",
            "rest": [{"mode": "server", "interaction": [{"code": "transaction"}]}],
        }
    )
    created = b'{"resourceType":"OperationOutcome","issue":[]}'
    entry = b'{"response":{"status":"201 Created"}}'
    responses: dict[int, bytes] = {}

    def answer(status: bytes, body: bytes) -> bytes:
        return (
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/fhir+json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def bundle_response(n: int) -> bytes:
        if n not in responses:
            body = b'{"resourceType":"Bundle","type":"transaction-response","entry":[' + b",".join([entry] * n) + b"]}"
            responses[n] = answer(b"200 OK", body)
        return responses[n]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                request_line = head.split(b"\r\n", 1)[0]
                if b" /fhir/metadata" in request_line:
                    writer.write(answer(b"200 OK", capability))
                elif request_line.startswith((b"POST /fhir ", b"POST /fhir/ ")):
                    writer.write(bundle_response(body.count(b'"request":{')))
                else:
                    writer.write(answer(b"201 Created", created))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()  # the client went away, or the sink is shutting down

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # runs until the parent closes stdin (or dies)
        server.close()

    asyncio.run(main())


class Sink:
    def __enter__(self) -> str:
        self.proc = subprocess.Popen(  # noqa: S603 - this very script, with a fixed argument
            [sys.executable, __file__, "--sink"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        return f"http://127.0.0.1:{port}/fhir"

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


# --- the two paths -----------------------------------------------------------------------------------------


def mapped(data: bytes, settings: Settings) -> list[MappedChart]:
    loaded = parse_json(data, source="bench")
    assert not loaded.problems, loaded.problems[:3]
    clinic = assemble(loaded.records)
    ctx = context(clinic, settings)
    return [map_chart(chart, ctx) for chart in clinic.charts]


def adapter_path(
    data: bytes, base_url: str, http: httpx.Client, workdir: Path, consent: bool = True, max_entries: int = BUNDLE_SIZE
) -> int:
    settings = Settings(database_url=f"sqlite:///{workdir / 'sync.db'}")
    partner = parse_partners(
        {
            "partners": [
                {
                    "id": "bench",
                    "name": "bench",
                    "role": "sandbox",
                    "base_url": base_url,
                    "recipient": {"organization_npi": NPI},
                    "attested": {"treating_relationship": True},
                    "max_entries": max_entries,
                    "rate_limit": {"requests_per_second": 1e9, "burst": 1000},
                }
            ]
        },
        "bench",
        {},
    )[0]
    engine = open_store(settings.database_url)
    pusher = Pusher(FhirClient(partner, http), engine, "transaction", "client-ids", f"{settings.fhir_base}/sid/x")
    # consent=False: a bench-only stand-in that releases everything, to show what the consent stage costs.
    release = consent_release(SqlAuditLog(settings.database_url)) if consent else release_all
    sent = 0
    charts = mapped(data, settings)
    for start in range(0, len(charts), BATCH_ITEMS):  # as the worker claims them (Worker.batch_items)
        work = [(None, chart) for chart in charts[start : start + BATCH_ITEMS]]
        for report in pusher.push_batch(work, release):
            assert isinstance(report, PushReport) and not report.failed and not report.rejected, report
            sent += report.sent
    engine.dispose()
    return sent


def release_all(chart: MappedChart, _partner: Any, _instant: datetime) -> Released:
    return Released(chart.resources)


def naive_path(data: bytes, base_url: str, http: httpx.Client, workdir: Path) -> int:
    sent = 0
    seen: set[tuple[str, str]] = set()
    for chart in mapped(data, Settings()):
        for resource in chart.resources:
            key = (resource["resourceType"], resource["id"])
            if key in seen:  # shared directory resources: once, as the adapter does
                continue
            seen.add(key)
            response = http.post(
                f"{base_url}/{resource['resourceType']}",
                content=dumps(resource),
                headers={"Content-Type": "application/fhir+json"},
            )
            assert response.status_code in (200, 201), response.text[:300]
            sent += 1
    return sent


def floor_path(data: bytes, base_url: str, http: httpx.Client, max_entries: int = BUNDLE_SIZE) -> int:
    """Mapping and transport only, what any correct push needs before consent, audit and the outbox: each
    resource serialized once, targets before the resources that reference them, transaction Bundles."""
    unique: dict[tuple[str, str], Entry] = {}
    for chart in mapped(data, Settings()):
        for resource in chart.resources:
            unique.setdefault((resource["resourceType"], resource["id"]), entry(resource))
    for chunk in packed_chunks(dependency_groups(list(unique.values())), max_entries):
        body = bundle_bytes("transaction", chunk, [client_id_request(e) for e in chunk])
        response = http.post(base_url, content=body, headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 200, response.text[:300]
    return len(unique)


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    count = fn()
    return count / (time.perf_counter() - start), count


def compare(
    label: str, data: bytes, base_url: str, reset: Callable[[], None] = lambda: None, max_entries: int = BUNDLE_SIZE
) -> None:
    http = make_http_client()
    try:
        with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as tmp2:
            reset()
            a_rate, a_count = timed(lambda: adapter_path(data, base_url, http, Path(tmp), max_entries=max_entries))
            reset()
            c_rate, _ = timed(
                lambda: adapter_path(data, base_url, http, Path(tmp2), consent=False, max_entries=max_entries)
            )
            reset()
            b_rate, b_count = timed(lambda: naive_path(data, base_url, http, Path(tmp)))
            reset()
            f_rate, _ = timed(lambda: floor_path(data, base_url, http, max_entries))
    finally:
        http.close()
    sys.stdout.write(
        f"{label:<8} (a) adapter {a_rate:7,.0f} resources/s ({a_count} sent)  "
        f"[without the consent stage {c_rate:7,.0f}/s; floor {f_rate:7,.0f}/s]  "
        f"(b) naive POST {b_rate:7,.0f} resources/s ({b_count} sent)  "
        f"a/b = {a_rate / b_rate:4.1f}x  [{c_rate / b_rate:4.1f}x; floor {f_rate / b_rate:4.1f}x]\n"
    )


def peers(data: bytes, names: Sequence[str]) -> None:
    from tests.servers.peers import PeerStartError, start_peer

    for name in names:
        try:
            running: Any = start_peer(name, attach=False)
        except PeerStartError as exc:
            sys.stdout.write(f"{name}: not started ({str(exc).splitlines()[0]})\n")
            continue
        try:
            # Medplum takes at most 50 updates per transaction (partners/local-peers.yaml, docs/testing.md).
            limit = 50 if name == "medplum" else BUNDLE_SIZE
            compare(name, data, running.peer.base_url, running.peer.reset, max_entries=limit)
        finally:
            running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=1000, help="synthetic clients against the sink")
    parser.add_argument("--peer-clients", type=int, default=100, help="synthetic clients against each peer")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink()
        return
    sys.stdout.write(f"sync throughput, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Bundles of {BUNDLE_SIZE}\n")
    mapped(make_input(2), Settings())  # warm-up: the compiled validators are built once per process
    with Sink() as base_url:
        compare("sink", make_input(args.n), base_url)
    if not args.no_peers:
        peers(make_input(args.peer_clients), ("medplum", "sekmet"))


if __name__ == "__main__":
    main()
