"""``modelport cache …``: prune, verify and stats of the local store."""

from __future__ import annotations

from typing import Annotated

import typer

from modelport import units as fmt
from modelport.cli._options import JsonOpt
from modelport.cli._output import Output

__all__ = ["app"]

app = typer.Typer(help="Look after the local store: prune, verify, stats.", no_args_is_help=True)


@app.command()
def prune(
    max_size: Annotated[
        str | None, typer.Option("--max-size", help="Keep the store under this size, e.g. 20GB.")
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Remove models unused for this long, e.g. 30d."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be freed.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Remove least recently used models: plan, then (unless --dry-run) execute."""
    from modelport.api import execute_plan, plan_prune

    plan = plan_prune(max_size=max_size, older_than=older_than)
    freed = plan.freed_bytes if dry_run else execute_plan(plan)
    out = Output(json_mode=json_)

    def human() -> None:
        if not plan.models and not plan.partials:
            out.message("Nothing to prune.")
            return
        if plan.partials:
            verb = "Would delete" if dry_run else "Deleted"
            total = sum(size for _, size in plan.partials)
            out.message(
                f"{verb} {len(plan.partials)} abandoned partial download(s), {fmt.size(total)}"
            )
        verb = "Would remove" if dry_run else "Removed"
        for m in plan.models:
            out.message(
                f"{verb} {m.registry}:{m.name}@{m.revision[:12]} "
                f"({fmt.size(m.size)}; {plan.reasons.get(m.key, '')})"
            )
        out.message(f"{'Would free' if dry_run else 'Freed'} {fmt.size(freed)}.")

    out.result(
        {"dry_run": dry_run, "removed": plan.models, "freed_bytes": freed, "reasons": plan.reasons},
        human,
    )


@app.command()
def verify(
    repair: Annotated[
        bool, typer.Option("--repair", help="Fetch corrupt blobs again from their hub.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Re-hash every blob in the store; with --repair, re-fetch the corrupt ones."""
    from modelport.api import verify_store

    report = verify_store(repair=repair)
    out = Output(json_mode=json_)

    def human() -> None:
        out.message(f"Checked {report.checked} blob(s), {fmt.size(report.checked_bytes)}.")
        for sha in report.corrupt:
            out.message(f"[red]corrupt[/red] sha256:{sha}")
        for alias in report.damaged_aliases:
            out.message(f"[red]damaged alias[/red] {alias}")
        for key, path in report.damaged_files:
            out.message(f"[red]damaged file[/red] {key}: {path}")
        for key in report.affected:
            state = "repaired" if key in report.repaired else "affected"
            out.message(f"  {state}: {key}")
        if not report.ok and not repair:
            out.message("Run `modelport cache verify --repair` to mend them.")

    out.result(report, human)
    if not report.ok and (not repair or set(report.repaired) != set(report.affected)):
        raise typer.Exit(1)


@app.command()
def stats(json_: JsonOpt = False) -> None:
    """Size of the store, its models, and how often pulls and runs were served from it."""
    from modelport.api import store_stats

    st = store_stats()
    out = Output(json_mode=json_)

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    def human() -> None:
        out.table(
            ["", ""],
            [
                ["models", st.models],
                ["blobs", st.blobs],
                ["on disk", fmt.size(st.total_size)],
                ["  model files", fmt.size(st.size)],
                [
                    "  converted to ONNX",
                    f"{fmt.size(st.converted_size)} ({st.converted} artifacts)",
                ],
                ["  PyTorch Hub weights", fmt.size(st.torch_hub_size)],
                ["  optimized graphs", fmt.size(st.graph_cache_size)],
                ["saved by de-duplication", fmt.size(max(0, st.logical_size - st.size))],
                [
                    "pulls served from the store",
                    f"{st.pull_hits} of {st.pull_hits + st.pull_misses} ({rate(st.pull_hit_rate)})",
                ],
                [
                    "runs served from the store",
                    f"{st.run_hits} of {st.run_hits + st.run_misses} ({rate(st.run_hit_rate)})",
                ],
                ["path", str(st.root)],
            ],
        )

    out.result(st, human)
