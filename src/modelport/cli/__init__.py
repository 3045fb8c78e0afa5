"""The modelport command line: a Typer app with one module per noun."""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr and a non-zero exit code."""
    from modelport.cli._errors import format_error
    from modelport.cli.app import app

    debug = os.environ.get("MODELPORT_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        app(args=argv, prog_name="modelport")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        text, code = format_error(exc)
        print(f"Error: {text}", file=sys.stderr)
        sys.exit(code)
