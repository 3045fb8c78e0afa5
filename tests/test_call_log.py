"""The call log: what each call cost, recorded in the background, reported and budgeted."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelport.api as api
from modelport.api import CallRecord
from modelport.catalog.entry import Pricing
from modelport.catalog.estimates import call_cost
from modelport.cli import main
from modelport.errors import BudgetExceededError, InvalidValueError

NOW = dt.datetime.now(dt.UTC)


def call(
    model: str = "openai/gpt-4o",
    *,
    provider: str = "openai",
    access: Any = "api",
    origin: Any = "python",
    cost: float | None = 0.01,
    latency: float = 100.0,
    started: dt.datetime | None = None,
    **fields: Any,
) -> CallRecord:
    """A recorded call with sensible defaults; override any field."""
    values: dict[str, Any] = {
        "input_tokens": 1000,
        "output_tokens": 100,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
    values.update(fields)
    return CallRecord(
        started_at=started or dt.datetime.now(dt.UTC),
        model=model,
        provider=provider,
        access=access,
        origin=origin,
        operation=values.pop("operation", "chat"),
        latency_ms=latency,
        cost_usd=cost,
        **values,
    )


# ---------------------------------------------------------------------------- cost


def test_a_call_of_gpt_4o_costs_its_catalog_prices() -> None:
    p = api.get_catalog()["openai/gpt-4o"].pricing
    assert p is not None
    assert p.input_per_1m_tokens and p.output_per_1m_tokens and p.cached_input_per_1m_tokens
    assert p.cached_input_per_1m_tokens < p.input_per_1m_tokens
    # 1,200 input tokens of which 200 from the cache, 300 output tokens.
    expected = (
        1000 * p.input_per_1m_tokens
        + 200 * p.cached_input_per_1m_tokens
        + 300 * p.output_per_1m_tokens
    ) / 1e6
    got = api.cost_of("openai/gpt-4o", input_tokens=1200, output_tokens=300, cached_tokens=200)
    assert got == pytest.approx(expected, abs=1e-12)
    # gpt-4o's prices today: $2.50 in, $1.25 cached, $10 out per million tokens.
    if (p.input_per_1m_tokens, p.cached_input_per_1m_tokens, p.output_per_1m_tokens) == (
        2.5,
        1.25,
        10.0,
    ):
        assert got == 0.00575
    # The cached tokens are cheaper than the same tokens uncached, by exactly the difference.
    uncached = api.cost_of("openai/gpt-4o", input_tokens=1200, output_tokens=300)
    assert uncached is not None and got is not None
    saved = 200 * (p.input_per_1m_tokens - p.cached_input_per_1m_tokens) / 1e6
    assert uncached - got == pytest.approx(saved, abs=1e-12)


def test_reasoning_tokens_are_priced_at_the_reasoning_price() -> None:
    p = Pricing(
        input_per_1m_tokens=1.0, output_per_1m_tokens=2.0, reasoning_output_per_1m_tokens=8.0
    )
    # 300 output tokens, 100 of them reasoning: 200 × $2 + 100 × $8, plus 50 input × $1.
    got = call_cost(p, input_tokens=50, output_tokens=300, reasoning_tokens=100)
    assert got == pytest.approx((50 * 1.0 + 200 * 2.0 + 100 * 8.0) / 1e6, abs=1e-15)
    # Without a reasoning price, reasoning tokens are output tokens.
    plain = Pricing(input_per_1m_tokens=1.0, output_per_1m_tokens=2.0)
    got = call_cost(plain, input_tokens=50, output_tokens=300, reasoning_tokens=100)
    assert got == pytest.approx((50 * 1.0 + 300 * 2.0) / 1e6, abs=1e-15)


def test_an_unknown_price_or_count_is_unknown_never_free() -> None:
    no_cache_price = Pricing(input_per_1m_tokens=2.0, output_per_1m_tokens=4.0)
    assert call_cost(no_cache_price, input_tokens=10, output_tokens=5, cached_tokens=3) is None
    # No cached tokens: the missing cached price is not needed.
    assert call_cost(no_cache_price, input_tokens=10, output_tokens=5) == pytest.approx(4e-5)
    input_only = Pricing(input_per_1m_tokens=0.1)  # an embedding model
    assert call_cost(input_only, input_tokens=1000, output_tokens=0) == pytest.approx(1e-4)
    assert call_cost(input_only, input_tokens=1000, output_tokens=1) is None
    assert call_cost(None, input_tokens=1, output_tokens=1) is None
    assert call_cost(no_cache_price, input_tokens=None, output_tokens=5) is None
    assert call_cost(no_cache_price, input_tokens=5, output_tokens=None) is None
    assert api.cost_of("acme/not-in-the-catalog", input_tokens=1, output_tokens=1) is None
    # A real entry without a cached price, asked about cached tokens.
    entry = api.get_catalog()["cohere/command-a-03-2025"]
    assert entry.pricing is not None and entry.pricing.cached_input_per_1m_tokens is None
    assert api.cost_of(entry.id, input_tokens=10, output_tokens=1, cached_tokens=4) is None
    assert api.cost_of(entry.id, input_tokens=10, output_tokens=1) is not None
    # A self-hosted model has no pricing at all.
    assert (
        api.cost_of("sentence-transformers/all-MiniLM-L6-v2", input_tokens=5, output_tokens=0)
        is None
    )


def test_impossible_token_counts_are_refused() -> None:
    p = Pricing(input_per_1m_tokens=1.0, output_per_1m_tokens=1.0)
    with pytest.raises(InvalidValueError):
        call_cost(p, input_tokens=-1, output_tokens=1)
    with pytest.raises(InvalidValueError, match="part of the input"):
        call_cost(p, input_tokens=5, output_tokens=1, cached_tokens=6)
    with pytest.raises(InvalidValueError):
        call_cost(p, input_tokens=5, output_tokens=1, reasoning_tokens=2)


def test_a_call_record_checks_its_kinds_and_keeps_utc() -> None:
    with pytest.raises(InvalidValueError, match="access"):
        call(access="satellite")
    with pytest.raises(InvalidValueError, match="origin"):
        call(origin="fax")
    naive = call(started=dt.datetime(2025, 3, 1, 12, 0))
    assert naive.started_at == dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    paris = dt.timezone(dt.timedelta(hours=1))
    aware = call(started=dt.datetime(2025, 3, 1, 13, 0, tzinfo=paris))
    assert aware.started_at == naive.started_at
    assert aware.started_at.tzinfo == dt.UTC


# ---------------------------------------------------------------------------- the log


def _record_sample() -> None:
    api.record_call(call(cost=0.01, latency=100.0, input_tokens=1000, output_tokens=100))
    api.record_call(
        call(cost=0.02, latency=300.0, input_tokens=2000, output_tokens=50, cached_tokens=500)
    )
    api.record_call(
        call(
            "anthropic/claude-sonnet-4-5",
            provider="anthropic",
            origin="gateway",
            cost=None,  # no price known: never counted as free
            latency=200.0,
            input_tokens=10,
            output_tokens=20,
            ttft_ms=40.0,
        )
    )
    api.record_call(
        call(
            "anthropic/claude-sonnet-4-5",
            provider="anthropic",
            origin="gateway",
            cost=0.5,
            latency=50.0,
            status="rate_limited",
            input_tokens=None,
            output_tokens=None,
            ttft_ms=60.0,
        )
    )
    api.record_call(
        call(
            "sentence-transformers/all-MiniLM-L6-v2",
            provider="local",
            access="local",
            origin="cli",
            operation="embeddings",
            cost=0.0,  # a local call has no per-call charge
            latency=5.0,
            input_tokens=12,
            output_tokens=0,
        )
    )
    # Ten days ago: outside the default seven-day window.
    api.record_call(call(cost=7.0, started=NOW - dt.timedelta(days=10)))


def test_the_report_by_model_adds_up_exactly() -> None:
    _record_sample()
    api.flush_usage()
    report = api.usage_report(by="model")
    rows = {r.key: r for r in report.rows}
    assert list(rows) == [
        "anthropic/claude-sonnet-4-5",  # most spent first
        "openai/gpt-4o",
        "sentence-transformers/all-MiniLM-L6-v2",
    ]
    gpt = rows["openai/gpt-4o"]
    assert (gpt.calls, gpt.errors, gpt.unknown_cost_calls) == (2, 0, 0)
    assert (gpt.input_tokens, gpt.output_tokens, gpt.cached_tokens) == (3000, 150, 500)
    assert gpt.cost_usd == 0.03
    assert gpt.latency_ms == 200.0
    assert gpt.p50_latency_ms == 200.0
    assert gpt.p95_latency_ms == pytest.approx(290.0)  # 100 + 0.95 × (300 − 100)
    assert gpt.ttft_ms is None
    claude = rows["anthropic/claude-sonnet-4-5"]
    assert (claude.calls, claude.errors, claude.unknown_cost_calls) == (2, 1, 1)
    assert claude.cost_usd == 0.5  # the known cost only
    assert (claude.input_tokens, claude.output_tokens) == (10, 20)
    assert claude.ttft_ms == 50.0
    local = rows["sentence-transformers/all-MiniLM-L6-v2"]
    assert (local.cost_usd, local.unknown_cost_calls) == (0.0, 0)
    total = report.total
    assert (total.calls, total.errors, total.unknown_cost_calls) == (5, 1, 1)
    assert total.cost_usd == 0.53
    assert total.input_tokens == 3022
    assert report.since is not None
    assert abs((dt.datetime.now(dt.UTC) - dt.timedelta(days=7) - report.since).total_seconds()) < 60


def test_the_report_by_provider_origin_access_and_since() -> None:
    _record_sample()
    by_provider = {r.key: (r.calls, r.cost_usd) for r in api.usage_report(by="provider").rows}
    assert by_provider == {"openai": (2, 0.03), "anthropic": (2, 0.5), "local": (1, 0.0)}
    by_origin = {r.key: r.calls for r in api.usage_report(by="origin").rows}
    assert by_origin == {"python": 2, "gateway": 2, "cli": 1}
    by_access = {r.key: r.calls for r in api.usage_report(by="access").rows}
    assert by_access == {"api": 4, "local": 1}
    everything = api.usage_report(since="all", by="provider")
    assert everything.since is None
    assert {r.key: r.calls for r in everything.rows}["openai"] == 3
    assert everything.total.cost_usd == 7.53
    assert api.usage_report(since=None).total.calls == 6
    assert api.usage_report(since="11d").total.calls == 6
    assert api.usage_report(since="240h").total.calls == 5
    start = (NOW - dt.timedelta(days=12)).date().isoformat()
    assert api.usage_report(since=start).total.calls == 6
    assert api.usage_report(since=NOW + dt.timedelta(minutes=5)).total.calls == 0
    with pytest.raises(InvalidValueError, match="usage window"):
        api.usage_report(since="last tuesday")
    with pytest.raises(InvalidValueError, match="group"):
        api.usage_report(by="colour")  # type: ignore[arg-type]


def test_the_report_by_day_and_call() -> None:
    two_days_ago = NOW - dt.timedelta(days=2)
    api.record_call(call(cost=0.25, started=two_days_ago, latency=10.0))
    api.record_call(call(cost=0.5, latency=20.0))
    api.record_call(call(cost=0.125, latency=30.0, served_by="openai/gpt-4o-mini"))
    days = api.usage_report(by="day").rows
    assert [(r.key, r.calls, r.cost_usd) for r in days] == [
        (two_days_ago.date().isoformat(), 1, 0.25),
        (dt.datetime.now(dt.UTC).date().isoformat(), 2, 0.625),
    ]
    report = api.usage_report(by=None, limit=2)
    assert report.rows == ()
    assert [c.cost_usd for c in report.calls] == [0.125, 0.5]  # newest first, at most 2
    newest = report.calls[0]
    assert newest.served_by == "openai/gpt-4o-mini"
    assert newest.started_at.tzinfo == dt.UTC
    assert report.total.calls == 3  # the totals count every call, not only those listed


def test_percentiles_interpolate_between_calls() -> None:
    for latency in range(10, 110, 10):
        api.record_call(call(latency=float(latency)))
    row = api.usage_report().total
    assert row.latency_ms == 55.0
    assert row.p50_latency_ms == 55.0
    assert row.p95_latency_ms == pytest.approx(95.5)


def test_a_row_survives_a_new_process(tmp_path: Path) -> None:
    api.record_call(call(cost=0.0625))
    api.reset()  # writes what is queued, forgets the writer and the settings
    assert api.usage_report().total.cost_usd == 0.0625
    # A real process that records and exits without flushing: its exit writes the row.
    script = textwrap.dedent(
        """
        import datetime as dt
        import modelport.api as api
        api.record_call(api.CallRecord(
            started_at=dt.datetime.now(dt.UTC), model="openai/gpt-4o", provider="openai",
            access="cli", origin="cli", operation="chat", latency_ms=12.5, cost_usd=0.125,
        ))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    report = api.usage_report(by="access")
    assert {r.key: r.cost_usd for r in report.rows} == {"api": 0.0625, "cli": 0.125}


def test_the_table_appears_in_a_database_made_before_it() -> None:
    from sqlalchemy import text

    from modelport.db import get_engine
    from modelport.settings import get_settings

    # A database an earlier modelport made: no call log, and none of what migrations added.
    with get_engine(get_settings().database_url).begin() as conn:
        for table in ("call_log", "alembic_version", "catalog_entry_versions", "ui_pulls"):
            conn.execute(text(f"DROP TABLE {table}"))
    api.reset()  # the next process opens a database without the table
    api.record_call(call(cost=0.5))
    assert api.usage_report().total.cost_usd == 0.5


def test_recording_does_not_wait_for_the_database() -> None:
    started = time.perf_counter()
    for i in range(1000):
        api.record_call(call(cost=0.001, latency=float(i)))
    elapsed = time.perf_counter() - started
    # Queued only: 1,000 rows written one transaction each would take far longer.
    assert elapsed < 2.0, elapsed
    api.flush_usage()
    total = api.usage_report(by=None, limit=1000).total
    assert total.calls == 1000
    assert total.cost_usd == pytest.approx(1.0)
    assert total.p50_latency_ms == 499.5


def test_a_write_that_fails_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    monkeypatch.setenv("MODELPORT_DATABASE_URL", f"sqlite:///{blocker}/modelport.db")
    api.reset()
    with caplog.at_level(logging.WARNING, logger="modelport.usage"):
        api.record_call(call())  # must not raise
        api.flush_usage(timeout=10)
    assert any("call log" in r.getMessage() for r in caplog.records), caplog.text


# ---------------------------------------------------------------------------- budget


def test_the_daily_budget_refuses_calls_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    api.check_budget()  # no budget: nothing to refuse
    monkeypatch.setenv("MODELPORT_DAILY_BUDGET", "0.05")
    api.reset()
    api.record_call(call(cost=9.0, started=NOW - dt.timedelta(days=1, minutes=5)))  # yesterday
    api.record_call(call(cost=None))  # unknown cost: not counted
    api.record_call(call(cost=0.0, access="local", provider="local"))
    api.check_budget()
    assert api.spent_today() == 0.0
    api.record_call(call(cost=0.03))
    assert api.spent_today() == 0.03  # this process's own calls count at once
    api.check_budget()
    api.record_call(call(cost=0.03))
    with pytest.raises(BudgetExceededError) as raised:
        api.check_budget()
    assert raised.value.spent == 0.06
    assert raised.value.budget == 0.05
    assert "$0.0600" in raised.value.message
    # Another process reads today's spend from the log.
    api.reset()
    assert api.spent_today() == 0.06
    with pytest.raises(BudgetExceededError):
        api.check_budget()


# ---------------------------------------------------------------------------- CLI


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_prints_the_report_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    _record_sample()
    code, out, _ = cli(capsys, "usage", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["by"] == "model"
    assert doc["total"]["calls"] == 5
    assert doc["total"]["cost_usd"] == 0.53
    assert doc["total"]["unknown_cost_calls"] == 1
    assert {r["key"]: r["calls"] for r in doc["rows"]}["openai/gpt-4o"] == 2
    code, out, _ = cli(capsys, "usage", "--by", "call", "--since", "all", "-n", "3", "--json")
    doc = json.loads(out)
    assert len(doc["calls"]) == 3
    assert doc["calls"][0]["model"] == "sentence-transformers/all-MiniLM-L6-v2"  # newest
    assert doc["total"]["calls"] == 6


def test_the_cli_table_shows_costs_and_unknowns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "usage")
    assert code == 0
    assert "No calls recorded since" in out
    _record_sample()
    code, out, _ = cli(capsys, "usage", "--by", "model")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "CALLS", "ERRORS"]
    gpt = next(line for line in lines if line.startswith("openai/gpt-4o"))
    assert "$0.0300" in gpt
    assert "3,000" in gpt
    claude = next(line for line in lines if line.startswith("anthropic/claude-sonnet-4-5"))
    assert "$0.5000 + 1 unknown" in claude
    assert lines[-1].startswith("5 calls since")
    assert "$0.5300" in lines[-1]
    assert "1 call of unknown cost" in lines[-1]
    code, out, _ = cli(capsys, "usage", "--by", "call")
    rows = out.splitlines()
    assert "SERVED BY" not in rows[0]
    unknown = next(line for line in rows if "anthropic" in line and "unknown" in line)
    assert "ok" in unknown.split()
    assert any("rate_limited" in line for line in rows)


def test_the_cli_refuses_a_bad_window_or_grouping(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "usage", "--since", "yesterday")
    assert code == 2
    assert out == ""
    assert err.startswith("Error: Invalid start of the usage window")
    assert err.count("\n") == 1
    code, _, err = cli(capsys, "usage", "--by", "week")
    assert code == 2
    assert "Cannot group the call log by 'week'" in err


# ---------------------------------------------------------------------------- REST


@pytest.mark.anyio
async def test_the_rest_route_answers_the_report(client: httpx.AsyncClient) -> None:
    _record_sample()
    r = await client.get("/api/v1/usage", params={"by": "provider"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "meta"}
    assert body["meta"] == {"since": "7d", "by": "provider"}
    rows = {row["key"]: row for row in body["data"]["rows"]}
    assert rows["anthropic"]["cost_usd"] == 0.5
    assert rows["anthropic"]["unknown_cost_calls"] == 1
    assert body["data"]["total"]["cost_usd"] == 0.53
    r = await client.get("/api/v1/usage", params={"by": "call", "since": "all", "limit": 1})
    calls = r.json()["data"]["calls"]
    assert len(calls) == 1
    assert calls[0]["access"] == "local"
    assert calls[0]["cost_usd"] == 0.0


@pytest.mark.anyio
async def test_the_rest_route_is_documented_and_refuses_bad_values(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/api/v1/usage"]["get"]
    assert {"200", "400", "422"} <= set(op["responses"])
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/UsageResponse")
    schemas = spec["components"]["schemas"]
    assert {"rows", "calls", "total", "since", "by"} <= set(schemas["UsageReport"]["properties"])
    assert "unknown_cost_calls" in schemas["UsageRow"]["properties"]
    r = await client.get("/api/v1/usage", params={"since": "whenever"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_value"
    assert r.json()["error"]["param"] == "since"
    r = await client.get("/api/v1/usage", params={"by": "week"})
    assert r.status_code == 422
    assert set(r.json()) == {"error"}
