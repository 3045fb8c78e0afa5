"""``modelport usage``: what every call to a model used and cost."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from modelport import units as fmt
from modelport.cli._options import JsonOpt
from modelport.cli._output import Output

__all__ = ["register"]

_GROUPINGS = ("model", "provider", "day", "access", "origin", "call")
_NUMBERS = ("CALLS", "ERRORS", "INPUT", "OUTPUT", "CACHED", "COST", "LATENCY", "TTFT")
_RIGHT = dict.fromkeys((*_NUMBERS, "MEAN", "P50", "P95"), "right")


def _cost(row: Any) -> str:
    """Known costs summed; ``unknown`` when no call's cost is known."""
    if row.calls and row.unknown_cost_calls == row.calls:
        return fmt.usd(None)
    text = fmt.usd(row.cost_usd)
    return f"{text} + {row.unknown_cost_calls} unknown" if row.unknown_cost_calls else text


def _footer(total: Any, since: str | None) -> str:
    window = f" since {since}" if since else ""
    errors = f" ({fmt.count(total.errors)} failed)" if total.errors else ""
    line = (
        f"{fmt.count(total.calls)} calls{window}{errors}: {fmt.count(total.input_tokens)} input "
        f"and {fmt.count(total.output_tokens)} output tokens, {fmt.usd(total.cost_usd)}"
    )
    if unknown := total.unknown_cost_calls:
        calls = "call" if unknown == 1 else "calls"
        line += f"; {fmt.count(unknown)} {calls} of unknown cost (not counted)"
    return line + "."


def usage(
    since: Annotated[
        str,
        typer.Option(help="Since a duration ago (30m, 24h, 7d), a date (2025-01-31), or all."),
    ] = "7d",
    by: Annotated[
        str,
        typer.Option(help="Add up per model, provider, day, access or origin; or list each call."),
    ] = "model",
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="With --by call: list at most this many.")
    ] = 50,
    json_: JsonOpt = False,
) -> None:
    """Show what calls to models used and cost (hosted, CLI, local and simulated)."""
    from modelport.api import usage_report
    from modelport.errors import InvalidValueError

    if by not in _GROUPINGS:
        raise InvalidValueError(
            f"Cannot group the call log by {by!r}.",
            hint="Use one of: " + ", ".join(_GROUPINGS) + ".",
        )
    report = usage_report(
        since=since,
        by=None if by == "call" else by,  # type: ignore[arg-type]
        limit=limit,
    )
    out = Output(json_mode=json_)
    shown_since = report.since.strftime("%Y-%m-%d %H:%M UTC") if report.since else None

    def human() -> None:
        if not report.total.calls:
            out.message(
                "No calls recorded" + (f" since {shown_since}." if shown_since else " yet.")
            )
            return
        if report.by is None:
            served = any(c.served_by for c in report.calls)
            out.table(
                [
                    "STARTED (UTC)",
                    "MODEL",
                    "ACCESS",
                    "ORIGIN",
                    "OPERATION",
                    "STATUS",
                    "INPUT",
                    "OUTPUT",
                    "CACHED",
                    "LATENCY",
                    "TTFT",
                    "COST",
                    *(["SERVED BY"] if served else []),
                ],
                [
                    [
                        c.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                        c.model,
                        c.access,
                        c.origin,
                        c.operation,
                        c.status,
                        fmt.tokens(c.input_tokens),
                        fmt.tokens(c.output_tokens),
                        fmt.tokens(c.cached_tokens),
                        fmt.millis(c.latency_ms),
                        fmt.millis(c.ttft_ms),
                        fmt.usd(c.cost_usd),
                        *([c.served_by or ""] if served else []),
                    ]
                    for c in report.calls
                ],
                justify=_RIGHT,
            )
        else:
            out.table(
                [
                    report.by.upper(),
                    "CALLS",
                    "ERRORS",
                    "INPUT",
                    "OUTPUT",
                    "CACHED",
                    "COST",
                    "MEAN",
                    "P50",
                    "P95",
                    "TTFT",
                ],
                [
                    [
                        r.key,
                        fmt.count(r.calls),
                        fmt.count(r.errors),
                        fmt.count(r.input_tokens),
                        fmt.count(r.output_tokens),
                        fmt.count(r.cached_tokens),
                        _cost(r),
                        fmt.millis(r.latency_ms),
                        fmt.millis(r.p50_latency_ms),
                        fmt.millis(r.p95_latency_ms),
                        fmt.millis(r.ttft_ms),
                    ]
                    for r in report.rows
                ],
                justify=_RIGHT,
            )
        out.message(_footer(report.total, shown_since))

    out.result(report, human)


def register(app: typer.Typer) -> None:
    """Add this command to the app."""
    app.command()(usage)
