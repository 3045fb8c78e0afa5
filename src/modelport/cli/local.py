"""Commands about models in the local store: ls, inspect, rm."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from modelport import units as fmt
from modelport.cli._options import JsonOpt, QuietOpt
from modelport.cli._output import Output

__all__ = ["register"]


def ls(
    hub: Annotated[str | None, typer.Option("--hub", help="Only this hub (hf, onnx, …).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only names containing this.")] = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List the models in the local store."""
    from modelport.api import list_models

    models = list_models(registry=hub, name=name, task=task)
    out = Output(json_mode=json_, quiet=quiet)
    if quiet:
        out.ids([f"{m.registry}:{m.name}@{m.revision}" for m in models])
        return

    def human() -> None:
        if not models:
            out.message("The store is empty. Pull a model with `modelport pull REF`.")
            return
        out.table(
            ["NAME", "REVISION", "SIZE", "PULLED", "TASK"],
            [
                [
                    f"{m.registry}:{m.name}",
                    m.revision[:12]
                    + (f" ({m.requested})" if m.requested and m.requested != m.revision else ""),
                    fmt.size(m.size),
                    fmt.age(m.pulled_at),
                    m.task or "?",
                ]
                for m in models
            ],
        )

    out.result(models, human)


def _config_summary(path: Any) -> dict[str, Any]:
    config = path / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return {}
    keys = (
        "model_type",
        "architectures",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "max_position_embeddings",
        "torch_dtype",
        "dtype",
    )
    return {k: data[k] for k in keys if k in data}


def inspect(
    ref: Annotated[
        str, typer.Argument(help="A stored model: hf:org/name[@rev] or a catalog name.")
    ],
    json_: JsonOpt = False,
) -> None:
    """Show a stored model: files, sizes, digests, task, config summary, where it lives."""
    from modelport.api import stored_files, stored_model

    model = stored_model(ref)
    files = stored_files(model)
    config = _config_summary(model.path)
    out = Output(json_mode=json_)

    def human() -> None:
        out.message(f"[bold]{model.registry}:{model.name}[/bold] @ {model.revision}")
        rows = [
            ["pulled as", model.ref],
            ["pulled", fmt.age(model.pulled_at)],
            ["last used", fmt.age(model.last_used)],
            ["task", model.task or "?"],
            ["library", model.library or "?"],
            ["size", f"{fmt.size(model.size)} in {len(files)} files"],
            ["path", str(model.path)],
        ]
        rows += [[f"config.{k}", str(v)] for k, v in config.items()]
        out.table(["", ""], rows)
        out.table(
            ["FILE", "SIZE", "SHA256"],
            [[f.path, fmt.size(f.size), f.sha256[:16] + "…"] for f in files],
        )

    out.result({"model": model, "files": files, "config": config}, human)


def rm(
    ref: Annotated[str, typer.Argument(help="hf:org/name (every revision) or hf:org/name@rev.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Remove a model (or one revision) from the store; blobs other models use stay."""
    from modelport.api import execute_plan, plan_remove

    plan = plan_remove(ref)
    out = Output(json_mode=json_)
    freed = plan.freed_bytes if dry_run else execute_plan(plan)
    verb = "Would remove" if dry_run else "Removed"

    def human() -> None:
        for m in plan.models:
            out.message(f"{verb} {m.registry}:{m.name}@{m.revision[:12]}")
        out.message(
            f"{'Would free' if dry_run else 'Freed'} {fmt.size(freed)} "
            f"({len(plan.blobs)} blob(s) no other model uses)."
        )

    out.result({"dry_run": dry_run, "removed": plan.models, "freed_bytes": freed}, human)


def register(app: typer.Typer) -> None:
    """Add these commands to the app."""
    app.command()(ls)
    app.command()(inspect)
    app.command()(rm)
