"""``modelport catalog …``: schema, validate, import, export, history, stats, remote sources,
update."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport.cli._options import JsonOpt
from modelport.cli._output import Output

__all__ = ["app"]

app = typer.Typer(
    help="Manage the catalog: schema, validation, import/export, remote sources.",
    no_args_is_help=True,
)
remote = typer.Typer(help="Remote catalogs that `catalog update` refreshes.", no_args_is_help=True)
app.add_typer(remote, name="remote")

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="modelport, litellm or openrouter.")]


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print the JSON Schema of catalog files."""
    from modelport.catalog.entry import catalog_json_schema

    text = json.dumps(catalog_json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        _write_atomic(output, text)


def _write_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Catalog JSON file to check.")],
    format: FormatOpt = "modelport",
    json_: JsonOpt = False,
) -> None:
    """Check a catalog file against the schema and report every problem with its JSON path."""
    from modelport.catalog.loader import read_catalog_file
    from modelport.catalog.remote import parse_catalog_text
    from modelport.errors import CatalogValidationError

    out = Output(json_mode=json_)
    try:
        if format == "modelport":
            entries = read_catalog_file(file).entries
        else:
            entries = parse_catalog_text(file.read_bytes(), source=str(file), format=format)
    except CatalogValidationError as e:
        problems = e.problems

        def human() -> None:
            for path, problem in problems:
                out.message(f"{file}: {path}: {problem}")
            out.message(f"{len(problems)} problem(s); the file is not a valid catalog.")

        out.result(
            {
                "valid": False,
                "file": str(file),
                "problems": [{"path": p, "message": m} for p, m in problems],
            },
            human,
        )
        raise typer.Exit(1) from None
    out.result(
        {"valid": True, "file": str(file), "entries": len(entries)},
        lambda: out.message(f"{file}: valid, {len(entries)} entries."),
    )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Catalog JSON file (or LiteLLM map).")],
    format: FormatOpt = "modelport",
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite entries with the same id.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Add the entries of a file to your catalog (all or none)."""
    from modelport.api import import_catalog

    report = import_catalog(file, format=format, replace=replace)
    out = Output(json_mode=json_)
    out.result(
        report,
        lambda: out.message(
            f"Imported {report.added} new and {report.replaced} replaced entries from {file}."
        ),
    )


@app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    source: Annotated[str | None, typer.Option(help="self-hosted or api.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
) -> None:
    """Write catalog entries as a catalog JSON document."""
    from modelport.api import export_catalog

    text = export_catalog(provider=provider, source=source, category=category, task=task)
    if output is None:
        sys.stdout.write(text)
    else:
        _write_atomic(output, text)


@app.command()
def remove(
    model_id: Annotated[str, typer.Argument(help="Exact id of a user-added entry.")],
) -> None:
    """Remove an entry you added."""
    from modelport.api import remove_entry

    remove_entry(model_id)
    Output().message(f"Removed {model_id}.")


def _changed_fields(newer: dict[str, Any], older: dict[str, Any]) -> str:
    keys = sorted(k for k in newer.keys() | older.keys() if newer.get(k) != older.get(k))
    return ", ".join(keys) if keys else "(none)"


@app.command()
def history(
    model_id: Annotated[str, typer.Argument(help="Exact id of a user or remote entry.")],
    json_: JsonOpt = False,
) -> None:
    """Every version of a user or remote entry: what each changed, and how, by what, by
    whom and when it ended."""
    from modelport.api import entry_history

    versions = entry_history(model_id)
    out = Output(json_mode=json_)

    def when(value: dt.datetime | None) -> str:
        return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")

    def human() -> None:
        if not versions:
            out.message(
                f"{model_id} is bundled with modelport: it changes only with modelport "
                "itself, and keeps no versions."
            )
            return
        out.table(
            ["VERSION", "ORIGIN", "WRITTEN (UTC)", "CHANGED", "ENDED (UTC)", "ENDED BY"],
            [
                [
                    f"{v.version} (current)" if v.current else str(v.version),
                    v.origin,
                    when(v.written_at),
                    _changed_fields(v.entry, versions[i + 1].entry)
                    if i + 1 < len(versions)
                    else "(first)",
                    when(v.replaced_at),
                    f"{v.change} by {v.changed_by} ({v.actor})" if v.change else "",
                ]
                for i, v in enumerate(versions)
            ],
        )

    out.result(versions, human)


@app.command()
def stats(json_: JsonOpt = False) -> None:
    """Count the catalog's entries by source, category, provider and status."""
    from modelport.api import get_catalog

    st = get_catalog().stats()
    out = Output(json_mode=json_)

    def human() -> None:
        out.message(
            f"{st.total} models ({st.with_pricing} with prices, "
            f"{st.with_requirements} with hardware needs)"
        )
        for label, counts in (
            ("source", st.by_source),
            ("category", st.by_category),
            ("status", st.by_status),
            ("provider", st.by_provider),
        ):
            out.message(
                f"[bold]{label}[/bold]: " + ", ".join(f"{k} {v}" for k, v in counts.items())
            )

    out.result(st, human)


@app.command()
def update(
    name: Annotated[str | None, typer.Argument(help="Only this remote source.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Accept an update that shrinks a source by >20%.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Refresh remote catalogs."""
    from modelport.api import update_catalogs

    reports = update_catalogs(name, force=force)
    out = Output(json_mode=json_)

    def human() -> None:
        for r in reports:
            kept = f" (kept your own entry for {len(r.kept_local)} id(s))" if r.kept_local else ""
            out.message(f"{r.name}: {r.before} → {r.after} entries from {r.url}{kept}")

    out.result(reports, human)


@remote.command("add")
def remote_add(
    name: Annotated[str, typer.Argument(help="Short name for the source.")],
    url: Annotated[str, typer.Argument(help="http(s) URL of a catalog JSON document.")],
    format: FormatOpt = "modelport",
) -> None:
    """Subscribe to a remote catalog (then run `modelport catalog update`)."""
    from modelport.api import add_remote_catalog

    add_remote_catalog(name, url, format=format)
    Output().message(f"Added {name} ({url}). Run `modelport catalog update {name}` to fetch it.")


@remote.command("ls")
def remote_ls(json_: JsonOpt = False) -> None:
    """List remote catalogs."""
    from modelport.api import remote_catalogs

    sources = remote_catalogs()
    out = Output(json_mode=json_)
    out.result(
        sources,
        lambda: out.table(
            ["NAME", "URL", "FORMAT", "ENTRIES", "REFRESHED"],
            [
                [
                    s.name,
                    s.url,
                    s.format,
                    s.entry_count,
                    s.refreshed_at.strftime("%Y-%m-%d %H:%M") if s.refreshed_at else "never",
                ]
                for s in sources
            ],
        ),
    )


@remote.command("rm")
def remote_rm(name: Annotated[str, typer.Argument(help="Source to remove.")]) -> None:
    """Unsubscribe from a remote catalog and drop its entries."""
    from modelport.api import remove_remote_catalog

    remove_remote_catalog(name)
    Output().message(f"Removed {name}.")
