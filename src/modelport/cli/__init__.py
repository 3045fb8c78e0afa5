"""The modelport command line: a Typer app with one module per noun."""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON output (``--json`` before any ``--``)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr (one JSON object with ``--json``)."""
    from modelport.cli._errors import format_error, json_error
    from modelport.cli.app import app

    debug = os.environ.get("MODELPORT_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    try:
        # In JSON mode usage errors come back as exceptions, to be written as JSON too.
        code = app(args=args, prog_name="modelport", standalone_mode=not as_json)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        if as_json:
            text, status = json_error(exc)
            print(text, file=sys.stderr)
        else:
            text, status = format_error(exc)
            print(f"Error: {text}", file=sys.stderr)
        sys.exit(status)
    if as_json and isinstance(code, int) and code:
        sys.exit(code)
