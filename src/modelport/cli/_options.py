"""Option and argument aliases shared by every command."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["GpuMemoryOpt", "JsonOpt", "LimitOpt", "NameArg", "QuietOpt"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids.")]
NameArg = Annotated[
    str, typer.Argument(help="Model id, alias, reference or name (fuzzy), e.g. minilm.")
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")]
GpuMemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--gpu-memory",
        help="Plan for one GPU with this much memory (e.g. 24GB; 0 for none).",
    ),
]
