"""Human renderings of numbers in tables."""

from __future__ import annotations

import pytest

from modelport import units as fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (128_000, "128k"),
        (131_072, "131,072"),
        (8_191, "8,191"),
        (1_048_576, "1,048,576"),
        (1_000_000, "1M"),
        (2_000_000, "2M"),
        (1_500_000, "1,500k"),
        (512, "512"),
        (None, "?"),
    ],
)
def test_context_windows_print_exactly(value: int | None, text: str) -> None:
    assert fmt.tokens(value) == text
