"""`bh-adapter sync`, `outbox ...` and `partners check`: the sync commands of the console script.

Registered on adapter.cli's app (imported at the end of adapter/cli.py). The sync machinery is imported inside the
commands, so `bh-adapter map` does not pay for httpx, SQLAlchemy and the consent engine at start-up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress

from adapter.cli import _check_paths, _error_line, _report, app, err_console, out_console
from adapter.settings import get_settings

if TYPE_CHECKING:
    from adapter.sync.commands import SyncResult
    from adapter.sync.outbox import Item
    from adapter.sync.push import PushReport

PartnersFile = Annotated[
    Path, typer.Option("--partners", envvar="BH_PARTNERS_FILE", help="partners file (docs/partners.md)")
]
DEFAULT_PARTNERS = Path("partners/local-peers.yaml")
DEFAULT_RECORDS = [Path("fixtures/clinic")]

outbox_app = typer.Typer(help="Inspect and repair the sync outbox.", no_args_is_help=True)
partners_app = typer.Typer(help="Partners' FHIR servers.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
app.add_typer(partners_app, name="partners")


def _print_sync(result: SyncResult) -> None:
    for p in result.partners:
        head = f"[bold]{escape(p.partner.id)}[/bold] ({escape(p.partner.base_url)})"
        if p.error:
            out_console.print(f"{head}: [red]not synced[/red]: {escape(p.error)}")
            continue
        if p.push is not None:
            s = p.push
            out_console.print(
                f"{head}: {s.sent} sent, {s.unchanged} unchanged, {len(s.withheld)} withheld, "
                f"{s.failed} failed, {s.dead} dead ({s.items} client(s))"
            )
            by_reason: dict[str, list[str]] = {}
            for client, w in s.withheld:
                by_reason.setdefault(w.reason, []).append(f"{client}:{w.ref.split('/')[0]}")
            for reason, refs in sorted(by_reason.items()):
                shown = ", ".join(refs[:6]) + (f" +{len(refs) - 6} more" if len(refs) > 6 else "")
                out_console.print(f"  withheld {len(refs)}: {escape(reason)} [dim]({escape(shown)})[/dim]")
            for line in s.errors:
                _error_line(f"{p.partner.id}: {line}")
        if p.pull is not None:
            fetched = ", ".join(f"{n} {t}" for t, n in p.pull.fetched.items()) or "nothing"
            out_console.print(
                f"  pulled {fetched}; {len(p.pull.referral_updates)} referral update(s), "
                f"{len(p.pull.records)} record(s) mapped, {p.pull.own} own write(s) skipped"
            )
            for line in p.pull.failures:
                _error_line(f"{p.partner.id}: pull: {line}")


@app.command("sync")
def sync_command(
    partner: Annotated[
        str | None, typer.Option("--partner", help="only this partner (id in the partners file)")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit (default: every 5 minutes)")] = False,
    partners_file: PartnersFile = DEFAULT_PARTNERS,
    records: Annotated[
        list[Path] | None, typer.Option("--records", help="record files or folders [default: fixtures/clinic]")
    ] = None,
    from_store: Annotated[
        bool, typer.Option("--from-store", help="sync what the service ingested (POST /records), not record files")
    ] = False,
) -> None:
    """Push what each partner may see (consent-checked), pull their updates; a durable outbox retries."""
    from adapter.errors import UsageError
    from adapter.sync.commands import SyncOptions, run_sync

    if from_store and records:
        raise UsageError("--from-store and --records exclude each other")
    paths = [] if from_store else records or DEFAULT_RECORDS
    _check_paths([partners_file, *paths])
    settings = get_settings()
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("syncing", total=None)

        def on_item(done: int, total: int, item: Item, report: PushReport | None) -> None:
            progress.update(task, completed=done, total=total, description=f"{item.partner_id} {item.client_id}")

        result = run_sync(
            settings,
            SyncOptions(partners_file, paths, partner_id=partner, once=once, from_store=from_store),
            os.environ,
            progress=on_item,
        )
    _report(result.input_problems)
    _print_sync(result)
    raise typer.Exit(result.exit_code)


@outbox_app.command("list")
def outbox_list_command(
    state: Annotated[str | None, typer.Option(help="pending | in-flight | sent | failed | dead")] = None,
    partner: Annotated[str | None, typer.Option("--partner")] = None,
) -> None:
    """List outbox items, newest first, with the partner's answer for failed and dead ones."""
    from adapter.errors import UsageError
    from adapter.sync.commands import outbox_list
    from adapter.sync.outbox import STATES

    if state is not None and state not in STATES:
        raise UsageError(f"--state must be one of {', '.join(STATES)}")
    items = outbox_list(get_settings(), state=state, partner_id=partner)
    for i in items:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(i.updated_at))
        line = f"{i.id:>6} {i.state:<9} {escape(i.partner_id)} {escape(i.client_id)} attempts={i.attempts} {when}"
        if i.state in ("failed", "dead") and i.last_error:
            line += f"\n       {escape(i.last_error)}"
        out_console.print(line)
    out_console.print(f"{len(items)} item(s)")


@outbox_app.command("retry")
def outbox_retry_command(item_id: Annotated[int, typer.Argument(help="outbox item id")]) -> None:
    """Put a dead or failed item back to pending (after fixing what the partner refused)."""
    from adapter.sync.commands import outbox_retry

    item = outbox_retry(get_settings(), item_id)
    out_console.print(f"item {item.id} ({escape(item.partner_id)}/{escape(item.client_id)}) is pending again")


@outbox_app.command("purge-dead")
def outbox_purge_dead_command(partner: Annotated[str | None, typer.Option("--partner")] = None) -> None:
    """Delete dead items (their partner answers with them)."""
    from adapter.sync.commands import outbox_purge_dead

    out_console.print(f"{outbox_purge_dead(get_settings(), partner_id=partner)} dead item(s) deleted")


@partners_app.command("check")
def partners_check_command(
    partner: Annotated[str | None, typer.Option("--partner")] = None,
    partners_file: PartnersFile = DEFAULT_PARTNERS,
) -> None:
    """Reachability, CapabilityStatement (FHIR version, write modes) and credentials of each partner."""
    from adapter.sync.commands import partners_check

    _check_paths([partners_file])
    checks = partners_check(get_settings(), partners_file, os.environ, partner_id=partner)
    for c in checks:
        if c.skipped:
            out_console.print(f"{escape(c.partner.id)} [dim]not contacted[/dim]: {escape(c.skipped)}")
            continue
        status = "[green]ok[/green]" if c.ok else "[red]problem[/red]"
        out_console.print(
            f"{escape(c.partner.id)} {status}: {escape(c.partner.base_url)} "
            f"FHIR {c.fhir_version or '?'} ({escape(c.software or 'unknown software')}); auth {c.auth}"
        )
        if c.modes:
            out_console.print(f"  {escape(c.modes)}")
        for problem in c.problems:
            _error_line(f"{c.partner.id}: {problem}")
    raise typer.Exit(0 if all(c.ok for c in checks) else 6)
