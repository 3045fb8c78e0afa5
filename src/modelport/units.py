"""Short human renderings of quantities (sizes, tokens, prices, times) for tables and pages."""

from __future__ import annotations

__all__ = ["age", "count", "millis", "params", "price", "size", "tokens", "usd"]


def params(value: int | None) -> str:
    """``8030000000`` → ``8.0B``."""
    if value is None:
        return "?"
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return (
                f"{value / scale:.1f}{unit}".replace(".0", "")
                if value / scale >= 100
                else f"{value / scale:.1f}{unit}"
            )
    return str(value)


def tokens(value: int | None) -> str:
    """A token count exactly: ``128000`` → ``128k``, ``2000000`` → ``2M``, ``131072`` → ``131,072``.

    ``k`` and ``M`` are decimal and used only when they are exact, so no reader has to
    guess whether ``128K`` meant 128,000 or 131,072.
    """
    if value is None:
        return "?"
    if value >= 1_000_000 and value % 1_000_000 == 0:
        return f"{value // 1_000_000}M"
    if value >= 1000 and value % 1000 == 0:
        return f"{value // 1000:,}k"
    return f"{value:,}"


def price(value: float | None) -> str:
    """USD per 1M tokens, or ``-``."""
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"


def usd(value: float | None) -> str:
    """A sum of money: ``0.01234`` → ``$0.0123``; ``None`` → ``unknown`` (never $0)."""
    if value is None:
        return "unknown"
    if 0 < value < 0.0001:
        return f"${value:.6f}"  # one cheap call still shows what it cost
    return f"${value:,.4f}"


def millis(value: float | None) -> str:
    """Milliseconds: ``1234.5`` → ``1,234 ms``, or ``-``."""
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def count(value: int) -> str:
    """``1234`` → ``1,234``."""
    return f"{value:,}"


def size(value: int | None) -> str:
    """``1536000`` → ``1.5 MB`` (decimal units, like ``hf`` and Ollama)."""
    if value is None:
        return "?"
    number = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if number < 1000 or unit == "TB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1000
    return f"{number:.1f} TB"


def age(when: object) -> str:
    """A past datetime as ``5 minutes ago``."""
    import datetime as dt

    if not isinstance(when, dt.datetime):
        return "never"
    seconds = (dt.datetime.now(dt.UTC) - when).total_seconds()
    if seconds < 5:
        return "just now"
    for limit, unit in ((60, "second"), (3600, "minute"), (86400, "hour"), (86400 * 30, "day")):
        if seconds < limit:
            div = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[unit]
            n = max(0, int(seconds // div))
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return when.date().isoformat()
