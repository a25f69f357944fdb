"""`bh-adapter serve` and `bh-adapter tokens create|revoke|list`: the adapter as a service (docs/api.md).

Registered on adapter.cli's app (imported at the end of adapter/cli.py). FastAPI, uvicorn and the stores are
imported inside the commands, so `bh-adapter map` does not pay for them at start-up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from adapter.cli import app, out_console
from adapter.errors import AdapterError, UsageError
from adapter.settings import Settings, get_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapter.pipeline import MappedChart
    from adapter.services import Services

DEFAULT_SEED = [Path("fixtures/clinic")]
log = logging.getLogger(__name__)

tokens_app = typer.Typer(help="API tokens: create (the secret is shown once), revoke, list.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


def _services() -> Services:
    from adapter.services import Services

    return Services.open(get_settings(), os.environ)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=0, max=65535)] = 8000,
    seed: Annotated[
        list[Path] | None,
        typer.Option("--seed", help="record files loaded when the store is empty [default: fixtures/clinic]"),
    ] = None,
    sync_every: Annotated[
        float | None,
        typer.Option(
            "--sync-every",
            min=1.0,
            help="also run a sync worker: push what ingest queued and pull partners' updates every N seconds",
        ),
    ] = None,
) -> None:
    """Run the API (ingest, preview, disclosures, partner FHIR API, UR packages, operations) under uvicorn."""
    import uvicorn

    from adapter.api import create_app
    from adapter.services import Services

    settings = get_settings()
    paths = [p for p in (seed or DEFAULT_SEED) if p.exists()]
    if seed and len(paths) != len(seed):
        raise UsageError(f"no such file or folder: {', '.join(str(p) for p in seed if not p.exists())}")
    services = Services.from_paths(settings, os.environ, paths)
    out_console.print(
        f"bh-fhir-adapter API on http://{escape(host)}:{port} ({len(services.client_ids())} client(s) in the store)"
    )
    worker = (
        SyncThread(settings, dict(os.environ), sync_every, lambda: list(services.mapped_charts()))
        if sync_every
        else None
    )
    if worker:
        out_console.print(
            f"sync worker: every {sync_every:g} s with the partners in {escape(str(settings.partners_file))}"
        )
        worker.start()
    try:
        # No access log: paths name clients. Every request is in the request log (GET /ops/requests) instead.
        uvicorn.run(create_app(services), host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
    finally:
        if worker:
            worker.stop()


class SyncThread:
    """The sync worker next to the API: every `interval_s`, one pass of `bh-adapter sync --from-store`: push what
    POST /records queued, through the consent release point, and pull partners' updates. Every `full_every_s`
    (and at start) the pass re-queues every client, so what a consent releases only later (a consent that starts
    in the future, an emergency that ended) is re-decided without a record changing. Logs counts and error
    classes only (no client ids: PHI discipline)."""

    def __init__(
        self,
        settings: Settings,
        env: dict[str, str],
        interval_s: float,
        charts: Callable[[], list[MappedChart]] | None = None,
        full_every_s: float = 3600.0,
    ) -> None:
        self.settings, self.env, self.interval_s, self.full_every_s = settings, env, interval_s, full_every_s
        self.charts = charts  # the API's mapped charts (cached per store version), so a quiet pass maps nothing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bh-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        from adapter.sync.commands import SyncOptions, run_sync

        last_full = float("-inf")
        while not self._stop.is_set():
            full = time.monotonic() - last_full >= self.full_every_s
            options = SyncOptions(
                self.settings.partners_file, [], from_store=True, enqueue=full, store_charts=self.charts
            )
            try:
                result = run_sync(self.settings, options, self.env, stop=self._stop.is_set)
                if full:
                    last_full = time.monotonic()
                log.info("sync pass: %d partner(s), exit code %d", len(result.partners), result.exit_code)
            except AdapterError as exc:
                log.warning("sync pass failed: %s", type(exc).__name__)
            except Exception:
                log.exception("sync pass crashed")
            self._stop.wait(self.interval_s)


@tokens_app.command("create")
def tokens_create_command(
    role: Annotated[str, typer.Option(help="clinic-admin | ingest | partner")],
    partner: Annotated[str | None, typer.Option(help="partner id (partners file); partner tokens only")] = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option(help="purpose of use the partner may ask for (repeat) [default: the partner's purpose_of_use]"),
    ] = None,
    expires: Annotated[datetime | None, typer.Option(help="expiry instant with offset, e.g. 2026-12-31T00:00Z")] = None,
    label: Annotated[str | None, typer.Option(help="a note for `tokens list` (who holds it)")] = None,
) -> None:
    """Create a token and print its secret (shown this once; only its hash is stored)."""
    from adapter.consent.vocab import vocabulary

    services = _services()
    purposes = list(purpose or [])
    if partner is not None:
        found = services.partners.get(partner)
        if found is None:
            raise UsageError(f"no partner {partner!r} in {services.settings.partners_file}")
        purposes = purposes or [found.purpose_of_use]
    unknown = [p for p in purposes if not vocabulary().is_purpose(p)]
    if unknown:
        raise UsageError(f"not a v3-ActReason purpose of use: {', '.join(unknown)}")
    token, secret = services.tokens.create(
        role, services.clock(), partner_id=partner, purposes=purposes, expires_at=expires, label=label
    )
    out_console.print(f"token {token.token_id} ({token.role}) created; its secret, shown only now:")
    out_console.print(secret, markup=False)


@tokens_app.command("revoke")
def tokens_revoke_command(token_id: Annotated[str, typer.Argument(help="the token's id (bh-...)")]) -> None:
    """Revoke a token: every request with it is refused from now on."""
    services = _services()
    token = services.tokens.revoke(token_id, services.clock())
    out_console.print(f"token {escape(token.token_id)} revoked")


@tokens_app.command("list")
def tokens_list_command() -> None:
    """List tokens (never their secrets)."""
    services = _services()
    now = services.clock()
    table = Table(Column("id", no_wrap=True), "role", "partner", "purposes", "created", "expires", "state", "label")
    tokens = services.tokens.tokens()
    for t in tokens:
        table.add_row(
            t.token_id,
            t.role,
            t.partner_id or "",
            " ".join(t.purposes),
            t.created_at.isoformat(timespec="seconds"),
            t.expires_at.isoformat(timespec="seconds") if t.expires_at else "",
            t.state(now),
            escape(t.label or ""),
        )
    out_console.print(table)
    out_console.print(f"{len(tokens)} token(s)")
