from __future__ import annotations

import modelport


def test_public_api_is_sorted_and_importable() -> None:
    assert modelport.__all__ == sorted(modelport.__all__)
    for name in modelport.__all__:
        assert getattr(modelport, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError):
        modelport.no_such_thing  # noqa: B018
