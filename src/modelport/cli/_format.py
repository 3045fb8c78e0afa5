"""Short human renderings of numbers used in tables."""

from __future__ import annotations

__all__ = ["count", "params", "price", "tokens"]


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
    """``131072`` → ``128K``."""
    if value is None:
        return "?"
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1024 and value % 1024 == 0:
        return f"{value // 1024}K"
    if value >= 1000:
        return f"{value / 1000:g}K"
    return str(value)


def price(value: float | None) -> str:
    """USD per 1M tokens, or ``-``."""
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"


def count(value: int) -> str:
    """``1234`` → ``1,234``."""
    return f"{value:,}"
