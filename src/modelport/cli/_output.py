"""One output object for every command: human tables, ``--json`` documents, quiet mode."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from modelport.jsonable import to_jsonable

__all__ = ["Output", "to_jsonable"]


class Output:
    """Writes a command's result in the mode the user chose."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The Rich console (created on first use)."""
        if self._console is None:
            from rich.console import Console

            # Piped output keeps whole ids instead of cutting them to 80 columns.
            width = None if sys.stdout.isatty() else 240
            self._console = Console(soft_wrap=False, width=width)
        return self._console

    def json(self, data: Any) -> None:
        """Print JSON data."""
        sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")

    def result(self, data: Any, human: Callable[[], None]) -> None:
        """Print ``data`` as JSON in JSON mode, else call ``human``."""
        if self.json_mode:
            self.json(data)
        elif not self.quiet:
            human()

    def message(self, text: str) -> None:
        """A line for humans (hidden in JSON and quiet modes)."""
        if not self.json_mode and not self.quiet:
            self.console.print(text, highlight=False, soft_wrap=True)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
        justify: dict[str, str] | None = None,
    ) -> None:
        """A table for humans."""
        from rich.table import Table

        table = Table(title=title, header_style="bold", box=None, pad_edge=False)
        for i, column in enumerate(columns):
            table.add_column(
                column,
                justify=(justify or {}).get(column, "left"),  # type: ignore[arg-type]
                no_wrap=i < len(columns) - 1,
                overflow="fold",
            )
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        self.console.print(table)

    def ids(self, values: Sequence[str]) -> None:
        """Quiet mode: one id per line."""
        sys.stdout.write("".join(f"{v}\n" for v in values))
