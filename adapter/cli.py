"""The `bh-adapter` console script: the only place that prints errors and picks exit codes.

Exit codes (stable, from adapter.errors): 0 success; 2 usage; 3 input rejected (some records were bad; the
good ones were still written); 4 the adapter produced invalid FHIR (a defect); 5 output could not be written.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from adapter import __version__
from adapter.errors import AdapterError, FhirValidationError, InputError, OutputError, Problem, UsageError
from adapter.output import NdjsonWriter, write_bundle
from adapter.pipeline import MappedChart, context, load, map_charts
from adapter.settings import Settings, get_settings

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
