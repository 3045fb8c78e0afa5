"""The usage page: calls, tokens, cost and latency over time, per model or provider, and the
call log's totals. The charts draw ``usage_timeline`` (``GET /api/v1/usage/timeline``) and
the tables ``usage_report`` (``GET /api/v1/usage``): the same use-cases the API answers with.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelport.errors import ModelportError
from modelport.jsonable import to_jsonable
from modelport.server.web.render import page

__all__ = ["WINDOWS", "router"]

router = APIRouter(include_in_schema=False)

#: The windows the page offers (any duration or date works in the address).
WINDOWS = (
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("all", "everything"),
)


def _report(since: str, by: str) -> dict[str, Any]:
    from modelport.api import usage_report
    from modelport.api.usage_timeline import usage_timeline

    grouping: Literal["model", "provider"] = "provider" if by == "provider" else "model"
    timeline = usage_timeline(since=since, by=grouping)
    report = usage_report(since=since, by=grouping)
    return {"timeline": timeline, "report": report}


@router.get("/ui/usage")
async def usage_page(request: Request, since: str = "24h", by: str = "model") -> Response:
    """What calls to models used and cost, charted over time."""
    by = "provider" if by == "provider" else "model"
    error = None
    data: dict[str, Any] = {"timeline": None, "report": None}
    try:
        data = await run_in_threadpool(_report, since, by)
    except ModelportError as e:
        error = e.one_line()
    chart = None
    if data["timeline"] is not None:
        # The chart's data, as the API sends it; read by usage.js from a JSON block.
        chart = json.dumps(to_jsonable(data["timeline"]), separators=(",", ":")).replace(
            "</", "<\\/"
        )
    return page(
        request,
        "usage.html",
        status=400 if error else 200,
        active="usage",
        since=since,
        by=by,
        windows=WINDOWS,
        error=error,
        chart=chart,
        **data,
    )
