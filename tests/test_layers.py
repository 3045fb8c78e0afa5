"""The layers of the package, enforced by reading its source (no module is imported).

Imports go down the list below, or stay inside one layer; shells sit on the use-cases.
Data flows catalog → hubs → store → convert → runtime, but the import order differs
where a layer uses a lower one's types: hubs write ``store`` manifests, and ``convert``
runs its parity check on ``runtime``. Imports under ``if TYPE_CHECKING:`` never run, so
they make no cycle; they still may not point at the shells or the use-cases.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import modelport

SRC = Path(modelport.__file__).parent

#: Bottom to top. ``modelport`` is the package root (``__version__``; its public names
#: are imported lazily, by name). ``validation`` is the catalog's "does it fit" half.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {"modelport", "errors", "settings", "db", "hardware", "trust", "hubconf", "jsonable"}
    ),
    frozenset({"catalog", "validation"}),
    frozenset({"store"}),
    frozenset({"hubs", "refs"}),
    frozenset({"runtime"}),
    frozenset({"convert"}),
    frozenset({"api"}),
    frozenset({"cli", "server", "docs", "__main__"}),
)
LOWER = ("hubs", "store", "convert", "runtime", "catalog")
SHELLS_AND_USE_CASES = ("api", "cli", "server")


def _unit(module: str) -> str:
    """The layer unit of a module: its sub-package, or the top-level module itself."""
    parts = module.split(".")
    return "modelport" if len(parts) == 1 else parts[1]


@functools.cache
def _modules() -> tuple[tuple[str, ast.Module], ...]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, ast.parse(path.read_text(encoding="utf-8"))))
    return tuple(found)


def _imports(tree: ast.Module, *, type_only: bool) -> Iterator[tuple[str, int]]:
    """Every ``modelport`` module a module imports (inside functions too), with its line."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in guarded and not type_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name.split(".")[0] == "modelport":
                yield name, node.lineno


def _rank(unit: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if unit in layer:
            return rank
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS")


def test_lower_layers_never_import_the_use_cases_or_the_shells() -> None:
    upward = [
        f"{module}:{line} imports {target}"
        for module, tree in _modules()
        if _unit(module) in LOWER
        for target, line in _imports(tree, type_only=True)
        if _unit(target) in SHELLS_AND_USE_CASES
    ]
    assert upward == []


def test_convert_and_runtime_never_import_a_hub() -> None:
    found = [
        f"{module}:{line} imports {target}"
        for module, tree in _modules()
        if _unit(module) in ("convert", "runtime")
        for target, line in _imports(tree, type_only=True)
        if _unit(target) == "hubs"
    ]
    assert found == []


def test_imports_only_go_down_the_layers() -> None:
    upward = [
        f"{module}:{line} imports {target}"
        for module, tree in _modules()
        for target, line in _imports(tree, type_only=False)
        if _rank(_unit(target)) > _rank(_unit(module))
    ]
    assert upward == []


def test_the_layers_have_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for module, tree in _modules():
        for target, _ in _imports(tree, type_only=False):
            if _unit(target) != _unit(module):
                graph.setdefault(_unit(module), set()).add(_unit(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    # Units of one layer may lean on each other; across layers no unit reaches back.
    cycles = sorted(
        f"{a} -> {b} -> … -> {a}"
        for a, targets in graph.items()
        for b in targets
        if _rank(a) != _rank(b) and reaches(b, a, {b})
    )
    assert cycles == []
