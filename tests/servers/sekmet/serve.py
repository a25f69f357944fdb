"""Start sekmet-fhir as a test peer: in-memory SQLite, workflow simulator off, loopback only.

Runs under the peer's own virtualenv (tests/servers/sekmet/.venv/bin/python), never the project's:

    tests/servers/sekmet/.venv/bin/python tests/servers/sekmet/serve.py --port 8091

Adds one non-FHIR route, ``POST /__admin/reset`` (sekmet's ``Store.reset()``: every resource, version,
index row and log), because sekmet has a reset command but no reset endpoint. Everything else is
sekmet-fhir as published. Settings are built in code (no settings.yaml), so nothing is written to disk
except what sekmet itself puts under the working directory; the fixture runs it in a temporary one.
"""

from __future__ import annotations

import argparse
import sys
import threading

import uvicorn
from fastapi import Response
from sekmet.config import Settings, set_settings  # type: ignore[import-untyped]
from sekmet.main import create_app  # type: ignore[import-untyped]
from starlette.routing import Route

RESET_PATH = "/__admin/reset"


def build_settings(host: str, port: int) -> Settings:
    return Settings(
        base_url=f"http://{host}:{port}/fhir",
        host=host,
        port=port,
        db_path=":memory:",
        # The simulator otherwise answers ServiceRequest/Task/Appointment/MedicationRequest/Claim
        # writes by itself two seconds later, which would race the tests.
        simulator={"enabled": False},
        # The traffic log stores every request body in the database: useless for tests, costs time.
        log_inbound=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (the test fixture holds its write end)"
    )
    args = parser.parse_args(argv)

    settings = build_settings(args.host, args.port)
    set_settings(settings)
    app = create_app(settings)
    store = app.state.ctx.store

    async def reset(_request: object) -> Response:
        store.reset()
        return Response(status_code=204)

    # First in the table so no catch-all route of sekmet's shadows it.
    app.router.routes.insert(0, Route(RESET_PATH, reset, methods=["POST"]))

    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on")
    )
    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            # read() returns only at EOF: the parent closed the pipe or died (even by SIGKILL).
            sys.stdin.buffer.read()
            server.should_exit = True

        threading.Thread(target=watch_stdin, name="stdin-watchdog", daemon=True).start()

    sys.stdout.write(f"sekmet-peer starting on {settings.base_url}\n")
    sys.stdout.flush()
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
