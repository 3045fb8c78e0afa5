"""One formatter per exception type: what was wrong and what to do, as a line or as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelport.errors import ModelNotFoundError, ModelportError

__all__ = ["CliError", "describe_error", "format_error", "json_error"]

_DEBUG_HINT = "Set MODELPORT_DEBUG=1 to see the traceback."


@dataclass(frozen=True)
class CliError:
    """An error as the CLI reports it."""

    type: str
    code: str
    message: str
    hint: str | None
    exit_code: int
    suggestions: tuple[str, ...] = ()

    def line(self) -> str:
        """The message and its hint on one line."""
        return f"{self.message} {self.hint}" if self.hint else self.message

    def document(self) -> dict[str, Any]:
        """The JSON document ``--json`` commands print for it."""
        body: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }
        if self.suggestions:
            body["suggestions"] = list(self.suggestions)
        return {"error": body}


def _modelport(exc: BaseException) -> CliError:
    assert isinstance(exc, ModelportError)
    suggestions = tuple(exc.suggestions) if isinstance(exc, ModelNotFoundError) else ()
    return CliError(type(exc).__name__, exc.code, exc.message, exc.hint, exc.exit_code, suggestions)


def _is_usage_error(exc: BaseException) -> bool:
    # Click's exceptions, whether from click itself or the copy newer Typer releases vendor.
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )


def _usage(exc: BaseException) -> CliError:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "modelport"
    return CliError(
        "UsageError",
        "usage_error",
        str(exc.format_message()).rstrip(".") + ".",  # type: ignore[attr-defined]
        f"Run `{command} --help` to see its options.",
        int(exc.exit_code),  # type: ignore[attr-defined]
    )


def _os_error(exc: BaseException) -> CliError:
    assert isinstance(exc, OSError)
    where = f" {exc.filename}" if exc.filename else ""
    reason = (exc.strerror or str(exc)).rstrip(".")
    return CliError(
        type(exc).__name__, "os_error", f"Cannot access{where}: {reason.lower()}.", None, 1
    )


def _unexpected(exc: BaseException) -> CliError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    text = f"Unexpected {name}: {detail}." if detail else f"Unexpected {name}."
    return CliError(name, "unexpected", text, _DEBUG_HINT, 1)


_FORMATTERS: list[tuple[Callable[[BaseException], bool], Callable[[BaseException], CliError]]] = [
    (lambda exc: isinstance(exc, ModelportError), _modelport),
    (_is_usage_error, _usage),
    (lambda exc: isinstance(exc, OSError), _os_error),
]


def describe_error(exc: BaseException) -> CliError:
    """What the CLI reports for an exception."""
    for matches, formatter in _FORMATTERS:
        if matches(exc):
            return formatter(exc)
    return _unexpected(exc)


def format_error(exc: BaseException) -> tuple[str, int]:
    """The one-line message and the exit code for an exception."""
    error = describe_error(exc)
    return error.line(), error.exit_code


def json_error(exc: BaseException) -> tuple[str, int]:
    """The one-line JSON document and the exit code for an exception."""
    error = describe_error(exc)
    return json.dumps(error.document(), ensure_ascii=False), error.exit_code
