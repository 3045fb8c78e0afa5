"""The call log over time: calls, tokens, cost and latency per time step, per model or
provider, for charts (the web UI's usage page, ``GET /api/v1/usage/timeline``).

The steps are whole minutes, hours or days (UTC) chosen so that the window holds at most
``steps`` of them; the groups with the most calls get a series each and the rest are added
up as ``other``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

from modelport.api.usage import _engine, _parse_since, _utc, flush_usage
from modelport.errors import InvalidValueError

__all__ = ["TimelineSeries", "UsageTimeline", "usage_timeline"]

#: The time steps a timeline may use, in seconds: 1, 5 and 15 minutes, 1, 3, 6 and 12
#: hours, a day, a week (and, past that, as many whole days as it takes).
STEPS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
OTHER = "other"


@dataclass(frozen=True)
class TimelineSeries:
    """One model's (or provider's) calls per time step; each tuple has one value a step."""

    key: str
    calls: tuple[int, ...]
    #: Input and output tokens together.
    tokens: tuple[int, ...]
    #: USD of the calls whose cost is known (a call of unknown cost adds nothing).
    cost_usd: tuple[float, ...]
    #: Mean latency of the step's calls; None for a step without calls.
    latency_ms: tuple[float | None, ...]


@dataclass(frozen=True)
class UsageTimeline:
    """Time steps from ``start`` (each ``step_s`` long, starting at ``times``) and a series
    per group, busiest first."""

    by: Literal["model", "provider"]
    start: dt.datetime
    end: dt.datetime
    step_s: int
    times: tuple[dt.datetime, ...]
    series: tuple[TimelineSeries, ...]


def _step(span_s: float, steps: int) -> int:
    for step in STEPS:
        if span_s / step <= steps:
            return step
    # Longer than the longest step allows: whole days, as many as it takes.
    return math.ceil(span_s / steps / 86400) * 86400


def usage_timeline(
    *,
    since: str | dt.datetime | None = "24h",
    by: Literal["model", "provider"] = "model",
    steps: int = 60,
    top: int = 8,
) -> UsageTimeline:
    """The calls since ``since`` (``24h``, ``7d``, an ISO date, or None/"all") in time steps,
    one series per model or provider (the ``top`` busiest; the rest as ``other``)."""
    from sqlalchemy import select, true

    from modelport.db import call_log

    if by not in ("model", "provider"):
        raise InvalidValueError(
            f"Cannot chart the call log by {by!r}.", hint="Use model or provider.", param="by"
        )
    if not 1 <= steps <= 1000 or top < 1:
        raise InvalidValueError(
            "steps must be 1 to 1000 and top at least 1.", param="steps" if top >= 1 else "top"
        )
    now = dt.datetime.now(dt.UTC)
    begin = _parse_since(since, now)
    flush_usage()
    c = call_log.c
    key = c.model if by == "model" else c.provider
    window = c.started_at >= begin if begin is not None else true()
    query = select(
        c.started_at, key, c.input_tokens, c.output_tokens, c.cost_usd, c.latency_ms
    ).where(window)
    with _engine().connect() as conn:
        rows = [(_utc(r[0]), str(r[1]), r[2], r[3], r[4], r[5]) for r in conn.execute(query)]
    start = begin or min((r[0] for r in rows), default=now - dt.timedelta(hours=1))
    step = _step(max(1.0, (now - start).total_seconds()), steps)
    first = int(start.timestamp()) // step * step
    count = (int(now.timestamp()) // step * step - first) // step + 1
    times = tuple(dt.datetime.fromtimestamp(first + i * step, dt.UTC) for i in range(count))
    calls_per_group: dict[str, int] = {}
    for row in rows:
        calls_per_group[row[1]] = calls_per_group.get(row[1], 0) + 1
    ranked = sorted(calls_per_group, key=lambda k: (-calls_per_group[k], k))
    kept = set(ranked[:top]) if len(ranked) <= top else set(ranked[: top - 1])
    groups = [k for k in ranked if k in kept] + ([OTHER] if len(kept) < len(ranked) else [])
    sums = {g: ([0] * count, [0] * count, [0.0] * count, [0.0] * count) for g in groups}
    for started, group, input_tokens, output_tokens, cost, latency in rows:
        index = min(count - 1, max(0, (int(started.timestamp()) - first) // step))
        calls, tokens, costs, latencies = sums[group if group in kept else OTHER]
        calls[index] += 1
        tokens[index] += (input_tokens or 0) + (output_tokens or 0)
        costs[index] += cost or 0.0
        latencies[index] += float(latency or 0.0)
    series = tuple(
        TimelineSeries(
            key=g,
            calls=tuple(calls),
            tokens=tuple(tokens),
            cost_usd=tuple(round(x, 10) for x in costs),
            latency_ms=tuple(
                round(total / n, 3) if n else None
                for total, n in zip(latencies, calls, strict=True)
            ),
        )
        for g, (calls, tokens, costs, latencies) in sums.items()
    )
    return UsageTimeline(by=by, start=start, end=now, step_s=step, times=times, series=series)
