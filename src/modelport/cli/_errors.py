"""One formatter per exception type: one line that says what was wrong and what to do."""

from __future__ import annotations

from collections.abc import Callable

from modelport.errors import ModelportError

__all__ = ["format_error"]

_DEBUG_HINT = "Set MODELPORT_DEBUG=1 to see the traceback."


def _modelport(exc: BaseException) -> tuple[str, int]:
    assert isinstance(exc, ModelportError)
    return exc.one_line(), exc.exit_code


def _os_error(exc: BaseException) -> tuple[str, int]:
    assert isinstance(exc, OSError)
    where = f" {exc.filename}" if exc.filename else ""
    reason = (exc.strerror or str(exc)).rstrip(".")
    return f"Cannot access{where}: {reason.lower()}.", 1


def _unexpected(exc: BaseException) -> tuple[str, int]:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    text = f"Unexpected {name}: {detail}." if detail else f"Unexpected {name}."
    return f"{text} {_DEBUG_HINT}", 1


_FORMATTERS: list[tuple[type[BaseException], Callable[[BaseException], tuple[str, int]]]] = [
    (ModelportError, _modelport),
    (OSError, _os_error),
]


def format_error(exc: BaseException) -> tuple[str, int]:
    """The one-line message and the exit code for an exception."""
    for kind, formatter in _FORMATTERS:
        if isinstance(exc, kind):
            return formatter(exc)
    return _unexpected(exc)
