"""The call log: one row for every call to a model, with its tokens, latency and cost.

Every call to a model (a hosted provider's API, a vendor CLI, a local model, a simulated
one), made from the CLI, from Python or through the gateway, is recorded with
``record_call``. Recording sits on the gateway's hot path, so it only queues the row: one
background thread per process writes the queue in batches (one transaction per ~0.5 s or
200 rows), ``flush_usage`` waits for it, and it is flushed at exit so a CLI process writes
its row before it ends. A row that cannot be written is logged (logger
``modelport.usage``), never raised into the call.

Cost: a hosted call costs what ``cost_of`` says (the catalog's prices × the call's tokens;
``None`` when a price it needs is unknown, which is never counted as free). A local call
is recorded with cost ``0.0``: it has no per-call charge. ``check_budget`` refuses paid
calls once today's (UTC) known spend reaches ``MODELPORT_DAILY_BUDGET``.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

from modelport.errors import BudgetExceededError, InvalidValueError, ModelportError
from modelport.settings import get_settings, parse_seconds

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "Access",
    "CallRecord",
    "Grouping",
    "Operation",
    "Origin",
    "UsageReport",
    "UsageRow",
    "check_budget",
    "cost_of",
    "flush_usage",
    "record_call",
    "spent_today",
    "usage_report",
]

log = logging.getLogger("modelport.usage")

Access = Literal["api", "cli", "local", "sim"]
Origin = Literal["cli", "python", "gateway"]
Operation = Literal["chat", "embeddings", "rerank", "completion"]
Grouping = Literal["model", "provider", "day", "access", "origin"]

#: A batch is written once it has this many rows or its first row waited this long.
BATCH_ROWS = 200
BATCH_SECONDS = 0.5
#: ``spent_today`` asks the database at most this often; in between it adds what this
#: process records.
SPENT_REFRESH_SECONDS = 1.0


def _utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (a naive one is taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidValueError(
            f"Unknown {name} {value!r} for a call record.",
            hint="Use one of: " + ", ".join(allowed) + ".",
        )


@dataclass(frozen=True)
class CallRecord:
    """One call to a model as the call log keeps it; ``None`` means not reported/unknown."""

    #: When the call started, in UTC (a naive datetime is taken to be UTC).
    started_at: dt.datetime
    #: The catalog id, or the reference as the caller gave it.
    model: str
    provider: str
    access: Access
    origin: Origin
    operation: Operation
    latency_ms: float
    #: ``"ok"``, or the code of the error the call ended with.
    status: str = "ok"
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: Input tokens read from the provider's prompt cache (part of ``input_tokens``).
    cached_tokens: int | None = None
    #: Output tokens spent on hidden reasoning (part of ``output_tokens``).
    reasoning_tokens: int | None = None
    #: Time to the first streamed token; None for a call that did not stream.
    ttft_ms: float | None = None
    #: USD; 0.0 for a local call, None when the price is unknown (never taken as free).
    cost_usd: float | None = None
    #: The model that actually answered, when a fallback served the call.
    served_by: str | None = None

    def __post_init__(self) -> None:
        # Checked here, in the caller's thread: a bad record fails at once, not in the writer.
        _check_choice("access", self.access, get_args(Access))
        _check_choice("origin", self.origin, get_args(Origin))
        _check_choice("operation", self.operation, get_args(Operation))
        object.__setattr__(self, "started_at", _utc(self.started_at))


_COLUMNS = tuple(f.name for f in fields(CallRecord))


# ---------------------------------------------------------------------------- the writer

_FLUSH = object()
_STOP = object()


class _Writer:
    """One daemon thread that writes queued records to one database in batches."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pid = os.getpid()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._state = threading.Condition()
        self._queued = 0  # records put so far
        self._written = 0  # records handled so far (written, or logged as lost)
        self._thread = threading.Thread(
            target=self._run, name="modelport-usage-writer", daemon=True
        )
        self._thread.start()

    def put(self, record: CallRecord) -> None:
        with self._state:
            # Under the lock, so that a flush's target never counts a record behind it.
            self._queued += 1
            self._queue.put(record)

    def flush(self, timeout: float) -> bool:
        """Wait until every record put before this call is handled; False on timeout."""
        with self._state:
            target = self._queued
            if self._written >= target:
                return True
            self._queue.put(_FLUSH)  # cut the batch window short
            return self._state.wait_for(lambda: self._written >= target, timeout)

    def stop(self, timeout: float) -> None:
        self.flush(timeout)
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if item is _FLUSH:
                continue
            batch = [item]
            deadline = time.monotonic() + BATCH_SECONDS
            stop = False
            while len(batch) < BATCH_ROWS:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is _FLUSH:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)  # type: ignore[arg-type]
            if stop:
                return

    def _write(self, batch: list[CallRecord]) -> None:
        try:
            from sqlalchemy import insert

            from modelport.db import call_log, get_engine

            rows = [{name: getattr(r, name) for name in _COLUMNS} for r in batch]
            with get_engine(self.url).begin() as conn:
                conn.execute(insert(call_log), rows)
        except Exception as e:  # the calls these rows describe have already returned
            log.warning("Could not write %d call(s) to the call log: %s", len(batch), e)
        finally:
            with self._state:
                self._written += len(batch)
                self._state.notify_all()


_lock = threading.Lock()
_writer: _Writer | None = None
_atexit_registered = False


def _get_writer() -> _Writer:
    global _writer, _atexit_registered
    writer = _writer
    # A forked child has the parent's object but not its thread: it starts its own.
    if writer is not None and writer.pid == os.getpid():
        return writer
    with _lock:
        if _writer is None or _writer.pid != os.getpid():
            _writer = _Writer(get_settings().database_url)
            if not _atexit_registered:
                atexit.register(_flush_at_exit)
                _atexit_registered = True
        return _writer


def _flush_at_exit() -> None:
    writer = _writer
    if writer is not None and writer.pid == os.getpid():
        writer.flush(5.0)


def record_call(record: CallRecord) -> None:
    """Queue one call for the call log; a background thread writes it within ~0.5 s."""
    try:
        writer = _get_writer()
    except ModelportError as e:  # a settings error: the call itself must not fail for it
        log.warning("Could not record a call of %s: %s", record.model, e)
        return
    writer.put(record)
    _spent.add(record)


def flush_usage(timeout: float = 5.0) -> None:
    """Wait (at most ``timeout`` s) until every call this process recorded is written."""
    writer = _writer
    if writer is not None and writer.pid == os.getpid() and not writer.flush(timeout):
        log.warning("The call log was not written within %g s.", timeout)


def _forget() -> None:
    """Write what is queued, stop the writer and forget today's spend (``api.reset``)."""
    global _writer
    with _lock:
        writer, _writer = _writer, None
    if writer is not None and writer.pid == os.getpid():
        writer.stop(5.0)
    _spent.forget()


def _engine() -> Engine:
    from modelport.db import get_engine

    return get_engine(get_settings().database_url)


# ---------------------------------------------------------------------------- cost


def cost_of(
    model_id: str,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> float | None:
    """USD a hosted call of a catalog model cost, or None (unknown id, price or tokens).

    For hosted calls only: a local call is recorded with cost 0.0 (no per-call charge),
    whereas a hosted call whose price the catalog lacks is None, unknown.
    """
    from modelport.api.catalog import get_catalog
    from modelport.catalog.estimates import call_cost

    catalog = get_catalog()
    if model_id not in catalog:
        return None
    return call_cost(
        catalog[model_id].pricing,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
    )


# ---------------------------------------------------------------------------- budget


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


class _SpentToday:
    """Today's known spend: the database's sum, read at most once a second, plus what this
    process recorded since it was read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only for arithmetic, never for a query
        self._refresh_lock = threading.Lock()
        self.forget()

    def forget(self) -> None:
        with self._lock:
            self._day: dt.date | None = None
            self._base = 0.0
            self._added = 0.0
            self._checked = -math.inf
            self._refresh_day: dt.date | None = None
            self._refresh_added = 0.0

    def add(self, record: CallRecord) -> None:
        cost = record.cost_usd
        if not cost:
            return
        day = record.started_at.date()
        with self._lock:
            if day == self._day:
                self._added += cost
            if day == self._refresh_day:
                self._refresh_added += cost

    def _fresh(self, today: dt.date) -> float | None:
        if self._day == today and time.monotonic() - self._checked < SPENT_REFRESH_SECONDS:
            return round(self._base + self._added, 10)
        return None

    def get(self) -> float:
        today = dt.datetime.now(dt.UTC).date()
        with self._lock:
            value = self._fresh(today)
        if value is not None:
            return value
        with self._refresh_lock:
            with self._lock:
                value = self._fresh(today)  # another thread refreshed while we waited
                if value is not None:
                    return value
                # Counted from before the flush: a record made meanwhile may be counted
                # twice until the next refresh, never missed.
                self._refresh_day, self._refresh_added = today, 0.0
            try:
                flush_usage()
                base = _known_cost_since(_day_start(today))
            except BaseException:
                with self._lock:
                    self._refresh_day = None
                raise
            with self._lock:
                self._day, self._base, self._added = today, base, self._refresh_added
                self._refresh_day, self._checked = None, time.monotonic()
                return round(base + self._added, 10)


_spent = _SpentToday()


def _known_cost_since(start: dt.datetime) -> float:
    from sqlalchemy import func, select

    from modelport.db import call_log

    with _engine().connect() as conn:
        total = conn.execute(
            select(func.sum(call_log.c.cost_usd)).where(call_log.c.started_at >= start)
        ).scalar()
    return round(float(total or 0.0), 10)  # a SUM of floats carries noise


def spent_today() -> float:
    """USD of today's (UTC) calls whose cost is known, from every process sharing the log."""
    return _spent.get()


def check_budget() -> None:
    """Raise ``BudgetExceededError`` if today's spend reached ``MODELPORT_DAILY_BUDGET``.

    Call it before a paid call; a local call needs no check. Without a budget it reads
    nothing.
    """
    budget = get_settings().daily_budget
    if budget is None:
        return
    spent = spent_today()
    if spent >= budget:
        raise BudgetExceededError(spent, budget)


# ---------------------------------------------------------------------------- report


@dataclass(frozen=True)
class UsageRow:
    """The calls of one group (a model, a provider, a day…) added up."""

    key: str
    calls: int
    #: Calls that ended with an error (status other than "ok").
    errors: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    #: USD, the sum of the known costs only.
    cost_usd: float
    #: Calls whose cost is unknown (not in ``cost_usd``).
    unknown_cost_calls: int
    #: Mean latency; the percentiles interpolate between the two nearest calls.
    latency_ms: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    #: Mean time to the first token over the calls that streamed.
    ttft_ms: float | None


@dataclass(frozen=True)
class UsageReport:
    """The call log since a moment: rows per group, or the calls themselves, and totals."""

    since: dt.datetime | None
    #: The grouping of ``rows``; None when ``calls`` lists the calls one by one.
    by: Grouping | None
    rows: tuple[UsageRow, ...]
    #: The calls themselves, newest first (only with ``by=None``; at most ``limit``).
    calls: tuple[CallRecord, ...]
    #: Every call since ``since`` (not only the listed ones) added up.
    total: UsageRow


def _parse_since(since: str | dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    """The start of the window: a duration back from now ("7d"), a date or a datetime;
    None or "all" for every call ever recorded."""
    if since is None or isinstance(since, dt.datetime):
        return None if since is None else _utc(since)
    text = since.strip()
    if text.lower() == "all":
        return None
    try:
        return now - dt.timedelta(seconds=parse_seconds(text, default_unit=None))
    except InvalidValueError:
        pass
    try:
        return _utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise InvalidValueError(
            f"Invalid start of the usage window {since!r}.",
            hint="Use a duration back from now (30m, 24h, 7d), a date (2025-01-31) or all.",
            param="since",
        ) from None


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the two nearest ranks (numpy's default)."""
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _row(key: str, agg: Any, latencies: list[float]) -> UsageRow:
    latencies.sort()
    return UsageRow(
        key=key,
        calls=int(agg.calls or 0),
        errors=int(agg.errors or 0),
        input_tokens=int(agg.input_tokens or 0),
        output_tokens=int(agg.output_tokens or 0),
        cached_tokens=int(agg.cached_tokens or 0),
        reasoning_tokens=int(agg.reasoning_tokens or 0),
        cost_usd=round(float(agg.cost_usd or 0.0), 10),
        unknown_cost_calls=int(agg.unknown_cost_calls or 0),
        latency_ms=None if agg.latency_ms is None else float(agg.latency_ms),
        p50_latency_ms=_percentile(latencies, 0.50),
        p95_latency_ms=_percentile(latencies, 0.95),
        ttft_ms=None if agg.ttft_ms is None else float(agg.ttft_ms),
    )


def _record(row: Any) -> CallRecord:
    values = dict(row._mapping)
    values.pop("id", None)
    return CallRecord(**values)


def usage_report(
    *,
    since: str | dt.datetime | None = "7d",
    by: Grouping | None = "model",
    limit: int = 100,
) -> UsageReport:
    """The call log since ``since`` (``7d``, ``24h``, ``30m``, an ISO date; None or "all"),
    added up per ``by``, or with ``by=None`` the calls themselves, newest first."""
    from sqlalchemy import Integer, case, func, literal, select, true

    from modelport.db import call_log

    if by is not None and by not in get_args(Grouping):
        raise InvalidValueError(
            f"Cannot group the call log by {by!r}.",
            hint="Use one of: " + ", ".join(get_args(Grouping)) + ", or call.",
            param="by",
        )
    if limit < 1:
        raise InvalidValueError(f"limit must be at least 1, got {limit}.", param="limit")
    start = _parse_since(since, dt.datetime.now(dt.UTC))
    flush_usage()  # this process's own calls belong in its report
    c = call_log.c
    window = c.started_at >= start if start is not None else true()
    aggregates = (
        func.count().label("calls"),
        func.sum(case((c.status != "ok", 1), else_=0), type_=Integer).label("errors"),
        func.sum(c.input_tokens).label("input_tokens"),
        func.sum(c.output_tokens).label("output_tokens"),
        func.sum(c.cached_tokens).label("cached_tokens"),
        func.sum(c.reasoning_tokens).label("reasoning_tokens"),
        func.sum(c.cost_usd).label("cost_usd"),
        func.sum(case((c.cost_usd.is_(None), 1), else_=0), type_=Integer).label(
            "unknown_cost_calls"
        ),
        func.avg(c.latency_ms).label("latency_ms"),
        func.avg(c.ttft_ms).label("ttft_ms"),
    )
    # SQLite and PostgreSQL both know date(); the log stores UTC, so the day is UTC's.
    key = {
        "model": c.model,
        "provider": c.provider,
        "access": c.access,
        "origin": c.origin,
        "day": func.date(c.started_at),
        None: literal("total"),
    }[by]
    with _engine().connect() as conn:
        total_agg = conn.execute(select(*aggregates).where(window)).one()
        grouped: dict[str, list[float]] = {}
        everything: list[float] = []
        for group, latency in conn.execute(select(key, c.latency_ms).where(window)):
            grouped.setdefault(str(group), []).append(float(latency))
            everything.append(float(latency))
        rows: list[UsageRow] = []
        calls: tuple[CallRecord, ...] = ()
        if by is None:
            found = conn.execute(
                select(call_log)
                .where(window)
                .order_by(c.started_at.desc(), c.id.desc())
                .limit(limit)
            )
            calls = tuple(_record(row) for row in found)
        else:
            for agg in conn.execute(
                select(key.label("key"), *aggregates).where(window).group_by(key)
            ):
                rows.append(_row(str(agg.key), agg, grouped.get(str(agg.key), [])))
    if by == "day":
        rows.sort(key=lambda r: r.key)
    else:
        rows.sort(key=lambda r: (-r.cost_usd, -r.calls, r.key))
    return UsageReport(
        since=start,
        by=by,
        rows=tuple(rows),
        calls=calls,
        total=_row("total", total_agg, everything),
    )
