"""``modelport pull``: download a model into the local store, with progress."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelport.cli._output import Output

if TYPE_CHECKING:
    from modelport.convert.export import ConversionResult

__all__ = ["register"]


class _RichProgress:
    """Per-file bars and a total bar with speed and ETA, fed by pull events."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.total_task: Any = None
        self.files: dict[str, Any] = {}
        self.done: dict[str, int] = {}
        self.sizes: dict[str, int] = {}

    def __enter__(self) -> _RichProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, event: Any) -> None:
        if event.status.startswith("warning: "):
            self.progress.console.print(f"[yellow]{event.status}[/yellow]")
            return
        if event.status == "pulling manifest":
            self.progress.console.print("pulling manifest")
            return
        if event.file is None:
            return
        if self.total_task is None:
            self.total_task = self.progress.add_task("total", total=0)
        if event.file not in self.files:
            self.sizes[event.file] = event.total or 0
            self.done[event.file] = 0
            name = event.file if len(event.file) <= 40 else "…" + event.file[-39:]
            # Small files only count towards the total; big ones get a bar of their own.
            self.files[event.file] = self.progress.add_task(
                name, total=event.total, visible=(event.total or 0) >= 1_000_000
            )
            self.progress.update(self.total_task, total=sum(self.sizes.values()))
        if event.completed is not None:
            self.done[event.file] = event.completed
            self.progress.update(self.files[event.file], completed=event.completed)
            self.progress.update(self.total_task, completed=sum(self.done.values()))


def pull(
    ref: Annotated[
        str, typer.Argument(help="What to pull: hf:org/name[@rev], org/name, or a catalog name.")
    ],
    revision: Annotated[
        str | None, typer.Option("--revision", "-r", help="Branch, tag or commit.")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="Also download files matching this glob (repeatable)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Skip files matching this glob (repeatable)."),
    ] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle", help="Allow pickle weights (.bin/.pt) when no safetensors exist."
        ),
    ] = False,
    json_: Annotated[
        bool,
        typer.Option(
            "--json", help="Print progress events as JSON lines, like Ollama's /api/pull."
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the model's folder.")
    ] = False,
    convert: Annotated[bool, typer.Option("--convert", help="Also convert it to ONNX.")] = False,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust", help="With --convert: run this PyTorch Hub repo's hubconf.py once."
        ),
    ] = False,
    input_shape: Annotated[
        list[str] | None,
        typer.Option("--input-shape", help="With --convert: example input, [name=]1,3,224,224."),
    ] = None,
) -> None:
    """Download a model into the local store (verified, resumable, de-duplicated)."""
    from modelport.api import pinned_ref
    from modelport.api import pull as do_pull

    kwargs: dict[str, Any] = {
        "revision": revision,
        "include": include or (),
        "exclude": exclude or (),
        "allow_pickle": allow_pickle,
    }
    if json_:

        def emit(event: Any) -> None:
            doc = {k: v for k, v in event.__dict__.items() if v is not None}
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()

        model = do_pull(ref, progress=emit, **kwargs)
        if convert:
            from modelport.api import convert as do_convert

            done = do_convert(pinned_ref(ref, model), trust=trust, input_shapes=input_shape or ())
            emit_doc = {
                "status": "converted",
                "path": str(done.path),
                "max_abs_diff": done.max_abs_diff,
            }
            sys.stdout.write(json.dumps(emit_doc) + "\n")
        return
    if quiet or not sys.stderr.isatty():

        def warn(event: Any) -> None:
            if event.status.startswith("warning: ") and not quiet:
                sys.stderr.write(event.status + "\n")

        model = do_pull(ref, progress=warn, **kwargs)
    else:
        with _RichProgress() as bars:
            model = do_pull(ref, progress=bars, **kwargs)
    out = Output(quiet=quiet)
    converted: ConversionResult | None = None
    if convert:
        from modelport.api import convert as do_convert

        converted = do_convert(pinned_ref(ref, model), trust=trust, input_shapes=input_shape or ())
    if quiet:
        sys.stdout.write((str(converted.path) if converted else model.path) + "\n")
        return
    from modelport.units import size

    source = (
        "already in the store" if model.from_store else f"downloaded {size(model.downloaded_bytes)}"
    )
    out.message(
        f"{model.hub}:{model.id}@{model.revision[:12]}: {len(model.files)} files, "
        f"{size(model.size)} ({source})"
    )
    out.message(model.path)
    if converted is not None:
        out.message(
            f"ONNX ({converted.task}, max |ONNX − original| {converted.max_abs_diff:.1e}): "
            f"{converted.path}"
        )


def register(app: typer.Typer) -> None:
    """Add this command to the app."""
    app.command()(pull)
