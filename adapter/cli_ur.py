"""`bh-adapter ur`: a client's utilization-review package for one payer (Da Vinci PAS-shaped Bundle).

Registered on adapter.cli's app (imported at the end of adapter/cli.py). Reads record files like `disclose`,
releases through the consent release point (audited in the adapter's database) and writes the Bundle; the report
(what was withheld by consent and left out as not minimum necessary) goes to standard output.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from rich.markup import escape

from adapter.cli import _check_paths, _report, app, out_console
from adapter.errors import InputError, Problem, UsageError
from adapter.settings import get_settings

DEFAULT_PARTNERS = Path("partners/local-peers.yaml")


@app.command("ur")
def ur_command(
    client_id: Annotated[str, typer.Argument(help="the client's record id, e.g. cl-08", show_default=False)],
    payer: Annotated[str, typer.Option(help="partner id of the insurer (partners file)", show_default=False)],
    service: Annotated[str, typer.Option(help="requested service: CPT/HCPCS code or system|code", show_default=False)],
    level_of_care: Annotated[
        str, typer.Option(help="level of care (adapter/ur/data/ur.yaml), e.g. asam-2.1", show_default=False)
    ],
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="first day requested", show_default=False)],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="last day requested", show_default=False)],
    purpose: Annotated[str, typer.Option(help="HPAYMT (payment) or COVAUTH (coverage authorization)")] = "HPAYMT",
    member_id: Annotated[str | None, typer.Option(help="member id, when the client's record lacks it")] = None,
    at: Annotated[datetime | None, typer.Option("--at", help="request instant with offset [default: now]")] = None,
    records: Annotated[
        list[Path] | None, typer.Option("--records", "-r", help="record files or folders [default: fixtures/clinic]")
    ] = None,
    partners_file: Annotated[
        Path, typer.Option("--partners", envvar="BH_PARTNERS_FILE", help="partners file (docs/partners.md)")
    ] = DEFAULT_PARTNERS,
    fmt: Annotated[Literal["json", "xml"], typer.Option("--format", "-f", help="json | xml")] = "json",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="[default: out/<client>-ur-<payer>.<format>]")] = None,
) -> None:
    """Build a utilization-review package for a payer: minimum necessary, consent-enforced, audited."""
    # Imported here: the consent engine and SQLAlchemy cost start-up time the other commands do not need.
    from adapter import fhir
    from adapter.consent import SqlAuditLog
    from adapter.fhirxml.writer import to_xml
    from adapter.output import atomic_write
    from adapter.pipeline import context, load, map_chart
    from adapter.sync.partners import load_partners
    from adapter.ur import UrRequest, build_package, check_payer, report_lines

    paths = records or [Path("fixtures/clinic")]
    _check_paths([*paths, partners_file])
    if at is not None and at.tzinfo is None:
        raise UsageError("--at needs a timezone, e.g. 2026-01-31T12:00:00-05:00")
    partners = {p.id: p for p in load_partners(partners_file, os.environ)}
    partner = check_payer(partners.get(payer), payer)
    try:
        request = UrRequest(
            client=client_id,
            payer=payer,
            service=service,  # parsed by the model
            level_of_care=level_of_care,
            start=date.fromordinal(start.toordinal()),
            end=date.fromordinal(end.toordinal()),
            purpose=purpose,  # checked by the model
            member_id=member_id,
            instant=at or datetime.now().astimezone(),
        )
    except ValidationError as exc:
        problems = [
            Problem(str(e["msg"]), field=".".join(str(p) for p in e["loc"]) or None)
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise UsageError("invalid request", problems) from None
    settings = get_settings()
    loaded = load(paths)
    if loaded.problems:
        _report(loaded.problems)
        # A rejected record could be a consent that denies: release nothing until the input is clean.
        raise InputError(
            "input records were rejected: fix them before building a package (a missing consent could widen it)"
        )
    chart = next((c for c in loaded.clinic.charts if c.client.id == client_id), None)
    if chart is None:
        raise UsageError(f"no client {client_id!r} in {', '.join(map(str, paths))}")
    mapped = map_chart(chart, context(loaded.clinic, settings), strict=settings.strict_validation)
    package = build_package(
        mapped, partner, request, audit=SqlAuditLog(settings.database_url), timezone=settings.clinic_timezone
    )
    target = out or settings.output_dir / f"{client_id}-ur-{payer}.{fmt}"
    data = (
        to_xml(package.bundle, pretty=True) if fmt == "xml" else fhir.dumps(package.bundle, pretty=True, newline=True)
    )
    atomic_write(target, data)
    for line in report_lines(package):
        out_console.print(escape(line))
    out_console.print(f"written to {escape(str(target))}")
