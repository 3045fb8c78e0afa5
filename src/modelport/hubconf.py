"""PyTorch Hub's ``hubconf.py``, read as source: its entry points, without running it.

The torch hub lists entry points with it at pull time and ``convert`` describes a folder
with it; neither imports the other for it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from modelport.errors import IntegrityError

__all__ = ["EntryPoint", "list_entrypoints"]


@dataclass(frozen=True)
class EntryPoint:
    """A callable ``hubconf.py`` offers, as its source declares it."""

    name: str
    signature: str
    doc: str | None
    imported_from: str | None = None


def list_entrypoints(hubconf_source: str) -> tuple[list[EntryPoint], list[str]]:
    """Entry points and ``dependencies`` of a ``hubconf.py``, read without running it."""
    try:
        tree = ast.parse(hubconf_source)
    except SyntaxError as e:
        raise IntegrityError(f"hubconf.py does not parse: {e.msg} (line {e.lineno}).") from None
    found: dict[str, EntryPoint] = {}
    dependencies: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found[node.name] = EntryPoint(
                node.name, f"({ast.unparse(node.args)})", ast.get_docstring(node)
            )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                shown = alias.asname or alias.name
                if alias.name != "*" and not shown.startswith("_") and shown[:1].islower():
                    found[shown] = EntryPoint(shown, "(...)", None, f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if "dependencies" in targets and isinstance(node.value, ast.List | ast.Tuple):
                dependencies = [
                    e.value
                    for e in node.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
    return sorted(found.values(), key=lambda e: e.name), dependencies
