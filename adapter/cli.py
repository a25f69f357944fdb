"""The `bh-adapter` console script: the only place that prints errors and picks exit codes.

Exit codes (stable, from adapter.errors): 0 success; 2 usage; 3 input rejected (some records were bad; the
good ones were still written); 4 the adapter produced invalid FHIR (a defect); 5 output could not be written;
8 a disclosure's audit trail could not be written (nothing was released).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from adapter import __version__, fhir
from adapter.errors import AdapterError, FhirValidationError, InputError, OutputError, Problem, UsageError
from adapter.output import NdjsonWriter, atomic_write, write_bundle
from adapter.pipeline import LoadedClinic, MappedChart, context, load, map_chart, map_charts
from adapter.settings import Settings, get_settings
from adapter.terminology.systems import NPI as NPI_SYSTEM

if TYPE_CHECKING:
    from adapter.consent import Identifier

app = typer.Typer(
    name="bh-adapter",
    help="Behavioral-health clinic records to HL7 FHIR R4: map, protect, sync.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

PROGRESS_THRESHOLD = 50  # clients; below this a progress bar is noise

Paths = Annotated[list[Path], typer.Argument(help="record files (.json, .xml) or folders of them", show_default=False)]


def _report(problems: list[Problem]) -> None:
    for problem in problems:
        _error_line(problem.line())


def _error_line(text: str) -> None:
    # Messages quote XSD facets like "[facet 'pattern']": escape them so Rich does not read them as markup.
    err_console.print(f"[red]error[/red]: {escape(text)}")


def _check_paths(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")


def _settings(recorded_at: datetime | None, strict: bool) -> Settings:
    base = get_settings()
    updates: dict[str, object] = {}
    if recorded_at is not None:
        if recorded_at.tzinfo is None:
            raise UsageError("--recorded-at needs a timezone, e.g. 2026-01-31T12:00:00-05:00")
        updates["recorded_at"] = recorded_at
    if strict:
        updates["strict_validation"] = True
    return base.model_copy(update=updates) if updates else base


def _exit_code(input_problems: list[Problem], defects: list[AdapterError]) -> int:
    if defects:
        return max(d.exit_code for d in defects)
    return InputError.exit_code if input_problems else 0


@app.command("map")
def map_command(
    paths: Paths,
    fmt: Annotated[
        Literal["json", "xml", "ndjson"], typer.Option("--format", "-f", help="json | xml | ndjson (Bulk Data)")
    ] = "json",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder [default: out]")] = None,
    strict: Annotated[bool, typer.Option(help="also validate with fhir.resources (slow reference check)")] = False,
    recorded_at: Annotated[
        datetime | None, typer.Option(help="Provenance.recorded (default: newest instant in each client's records)")
    ] = None,
) -> None:
    """Map clinic records to FHIR R4: one Bundle per client, or NDJSON per resource type."""
    _check_paths(paths)
    settings = _settings(recorded_at, strict)
    out_dir = out or settings.output_dir
    loaded = load(paths)
    _report(loaded.problems)
    ctx = context(loaded.clinic, settings)
    defects: list[AdapterError] = []
    written = resources = 0
    charts = loaded.clinic.charts
    show_progress = len(charts) >= PROGRESS_THRESHOLD and err_console.is_terminal

    with Progress(console=err_console, transient=True, disable=not show_progress) as progress:
        task = progress.add_task("mapping", total=len(charts))
        ndjson = NdjsonWriter(out_dir) if fmt == "ndjson" else None
        try:
            for item in map_charts(loaded.clinic, ctx, strict=settings.strict_validation):
                progress.advance(task)
                if not isinstance(item, MappedChart):
                    defects.append(item)
                    _report(item.problems or [Problem(str(item))])
                    continue
                if ndjson is not None:
                    ndjson.write(item)
                else:
                    write_bundle(item, out_dir, fmt)  # type: ignore[arg-type]
                written += 1
                resources += len(item.resources)
        finally:
            if ndjson is not None:
                ndjson.__exit__(*sys.exc_info())

    rejected = len({(p.location, p.record_id) for p in loaded.problems})
    out_console.print(
        f"{written} client(s) mapped, {resources} resources written to {out_dir}/ as {fmt}; "
        f"{rejected} record(s) rejected" + (f"; {len(defects)} client(s) not written" if defects else "")
    )
    raise typer.Exit(_exit_code(loaded.problems, defects))


@app.command("validate")
def validate_command(paths: Paths) -> None:
    """Check clinic record files (fields, codes, scores, links) without writing anything."""
    _check_paths(paths)
    loaded = load(paths)
    _report(loaded.problems)
    rejected = len({(p.location, p.record_id) for p in loaded.problems})
    accepted = loaded.records_read - sum(1 for p in loaded.clinic.problems if p.record_id)
    out_console.print(f"{accepted} record(s) valid, {rejected} rejected, {len(loaded.clinic.charts)} client(s)")
    raise typer.Exit(_exit_code(loaded.problems, []))


@app.command("version")
def version_command() -> None:
    """Print the adapter's version."""
    out_console.print(f"bh-fhir-adapter {__version__} (FHIR R4 4.0.1)")


def _directory_identifiers(loaded: LoadedClinic, record_id: str, kind: str) -> tuple[Identifier, ...]:
    """A directory id (or "system|value") -> the identifiers the mapped Organization/Practitioner carries."""
    from adapter.consent import Identifier

    if "|" in record_id:
        try:
            return (Identifier.parse(record_id),)
        except ValueError as exc:
            raise UsageError(f"--{kind}: {exc}") from exc
    directory = loaded.clinic.directory
    found: Any = (
        directory.practitioners.get(record_id)
        if kind == "practitioner"
        else directory.organizations.get(record_id) or directory.programs.get(record_id)
    )
    if found is None:
        raise UsageError(f"no {kind} {record_id!r} in the directory")
    identifiers = [Identifier(system=NPI_SYSTEM, value=found.npi)] if found.npi else []
    identifiers += [Identifier(system=i.system, value=i.value) for i in found.identifiers]
    if not identifiers:
        raise UsageError(f"{kind} {record_id!r} has no NPI or identifier to disclose to")
    return tuple(identifiers)


@app.command("disclose")
def disclose_command(
    client_id: Annotated[str, typer.Argument(help="the client's record id, e.g. cl-02", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="recipient organization id (directory) or system|value")],
    purpose: Annotated[str, typer.Option(help="purpose of use (v3-ActReason): TREAT, HPAYMT, COVAUTH, HLEGAL ...")],
    at: Annotated[datetime | None, typer.Option("--at", help="disclosure instant with offset [default: now]")] = None,
    emergency: Annotated[str | None, typer.Option(help="nature of a bona fide medical emergency (42 CFR 2.51)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="disclosed Bundle [default: out/<client>-disclosure.json]")
    ] = None,
    records: Annotated[
        list[Path] | None, typer.Option("--records", "-r", help="record files or folders [default: records]")
    ] = None,
    practitioner: Annotated[
        str | None, typer.Option(help="recipient practitioner id (directory) or system|value")
    ] = None,
    treating: Annotated[bool, typer.Option(help="attest a treating relationship with the client")] = False,
    medical_personnel: Annotated[bool, typer.Option(help="attest the recipient is medical personnel")] = False,
    minor_may_consent_alone: Annotated[
        bool, typer.Option(help="state law lets this minor consent alone (42 CFR 2.14)")
    ] = False,
    restriction: Annotated[
        list[str] | None, typer.Option(help="purpose the client restricted for this recipient (45 CFR 164.522)")
    ] = None,
    by: Annotated[str, typer.Option(help="who discloses (recorded in the audit)")] = "bh-adapter disclose",
) -> None:
    """Disclose a client's records to a recipient: label, decide, redact, audit, write the Bundle, report."""
    # Imported here: the consent engine (and SQLAlchemy) cost start-up time the other commands do not need.
    from adapter.consent import DisclosureRequest, Emergency, HipaaRestriction, SqlAuditLog, enforce
    from adapter.consent.report import report_lines

    paths = records or [Path("records")]
    _check_paths(paths)
    settings = get_settings()
    loaded = load(paths)
    if loaded.problems:
        _report(loaded.problems)
        # A rejected record could be a consent that denies: disclose nothing until the input is clean.
        raise InputError("input records were rejected: fix them before disclosing (a missing consent could widen it)")
    chart = next((c for c in loaded.clinic.charts if c.client.id == client_id), None)
    if chart is None:
        raise UsageError(f"no client {client_id!r} in {', '.join(map(str, paths))}")
    if at is not None and at.tzinfo is None:
        raise UsageError("--at needs a timezone, e.g. 2026-01-31T12:00:00-05:00")
    organizations = _directory_identifiers(loaded, to, "organization")
    practitioners = _directory_identifiers(loaded, practitioner, "practitioner") if practitioner else ()
    try:
        request = DisclosureRequest(
            recipient_organizations=organizations,
            recipient_practitioners=practitioners,
            recipient_name=to,
            purpose=purpose,
            instant=at or datetime.now().astimezone(),
            timezone=settings.clinic_timezone,
            disclosed_by=by,
            emergency=Emergency(description=emergency, declared_by=by) if emergency else None,
            recipient_is_medical_personnel=medical_personnel,
            treating_relationship=treating,
            minor_may_consent_alone=minor_may_consent_alone,
            hipaa_restrictions=tuple(
                HipaaRestriction(recipients=organizations, purposes=(p,)) for p in restriction or ()
            ),
        )
    except ValidationError as exc:
        raise UsageError("; ".join(str(e["msg"]) for e in exc.errors(include_url=False, include_input=False))) from exc
    mapped = map_chart(chart, context(loaded.clinic, settings), strict=settings.strict_validation)
    bundle = mapped.bundle
    consents = [r for r in mapped.resources if r["resourceType"] == "Consent"]
    disclosure = enforce(bundle, request, consents, audit=SqlAuditLog(settings.database_url))
    path = out or settings.output_dir / f"{client_id}-disclosure.json"
    atomic_write(path, fhir.dumps(disclosure.bundle, pretty=True, newline=True))
    resources = {f"{r['resourceType']}/{r['id']}": r for r in mapped.resources}
    for line in report_lines(disclosure, resources):
        out_console.print(escape(line))
    out_console.print(f"Bundle written to {escape(str(path))}")


# The sync commands live in their own module; importing it registers them on `app`.
from adapter import cli_service, cli_sync, cli_ur  # noqa: E402, F401


def main() -> None:
    """Console entry point: AdapterErrors become one line and their exit code, never a traceback."""
    try:
        code = app(standalone_mode=False)  # click returns the exit code of typer.Exit in this mode
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except AdapterError as exc:
        for line in exc.lines():
            _error_line(line)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(UsageError.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option values, missing arguments
        format_message = getattr(exc, "format_message", None)
        _error_line(format_message() if callable(format_message) else str(exc))
        sys.exit(UsageError.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()


__all__ = ["FhirValidationError", "OutputError", "app", "main"]
