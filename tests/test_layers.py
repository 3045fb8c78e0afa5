"""The layers of the package, enforced by reading its source (no module is imported).

Imports go down the list below, or stay inside one layer; shells sit on the use-cases.
Data flows catalog → hubs → store → convert → runtime, but the import order differs
where a layer uses a lower one's types: hubs write ``store`` manifests, and ``convert``
runs its parity check on ``runtime``. Imports under ``if TYPE_CHECKING:`` never run, so
they make no cycle; they still may not point at the shells or the use-cases.

Beyond the layers: no two modules import each other (imports inside functions count),
the server never imports the CLI, and the shells reach the store, the converter, the
database and catalog queries only through the use-cases.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import modelport
from modelport import _LAZY

SRC = Path(modelport.__file__).parent
NAMES = frozenset(
    ".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
    for p in SRC.rglob("*.py")
)

#: Bottom to top. ``modelport`` is the package root (``__version__``; its public names
#: are imported lazily, by name). ``validation`` is the catalog's "does it fit" half.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "modelport",
            "errors",
            "settings",
            "setting_specs",
            "db",
            "migrations",
            "hardware",
            "trust",
            "hubconf",
            "jsonable",
            "secrets",
            "units",
        }
    ),
    frozenset({"catalog", "validation"}),
    frozenset({"store"}),
    frozenset({"hubs", "refs"}),
    frozenset({"runtime"}),
    frozenset({"convert"}),
    frozenset({"providers"}),
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
    """Every ``modelport`` module a module imports (inside functions too), with its line.

    ``from modelport import pull`` imports the module that the package's lazy table
    names for ``pull``; ``importlib.import_module("modelport.x")`` imports ``modelport.x``.
    """
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
            if node.module == "modelport":
                names += [_LAZY[a.name] for a in node.names if a.name in _LAZY]
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
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


def _module(name: str) -> str:
    """The module an imported name lives in (``modelport.api.pull`` → ``modelport.api``)."""
    while name not in NAMES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def test_no_module_imports_itself_through_others() -> None:
    """No circle between modules, counting imports inside functions (they run later, but
    a circle still means two modules that cannot be read, tested or moved apart)."""
    graph: dict[str, set[str]] = {}
    for module, tree in _modules():
        targets = graph.setdefault(module, set())
        for target, _ in _imports(tree, type_only=False):
            target = _module(target)
            # Importing a.b.c runs a/__init__ and a/b/__init__ first, unless we are inside.
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                step = ".".join(parts[:i])
                if step != module and not module.startswith(step + "."):
                    targets.add(step)
    circles: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            circles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    assert [" -> ".join(c) for c in circles] == []


def test_the_server_never_imports_the_cli() -> None:
    found = [
        f"{module}:{line} imports {target}"
        for module, tree in _modules()
        if _unit(module) == "server"
        for target, line in _imports(tree, type_only=True)
        if _unit(target) == "cli"
    ]
    assert found == []


def test_the_shells_reach_the_store_and_the_catalog_through_the_use_cases() -> None:
    """The CLI and the server call ``api/``: they never open the store, the converter or
    the database themselves, nor build a catalog query of their own."""
    found = [
        f"{module}:{line} imports {target}"
        for module, tree in _modules()
        if _unit(module) in ("cli", "server")
        for target, line in _imports(tree, type_only=False)
        if _unit(target) in ("store", "convert", "db")
        # The CLI searches, compares, pulls and runs through the use-cases too.
        or (_unit(module) == "cli" and _unit(target) in ("hubs", "runtime"))
    ]
    found += [
        f"{module}:{node.lineno} calls {ast.unparse(node.func)}"
        for module, tree in _modules()
        if _unit(module) in ("cli", "server")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func).rsplit(".", 1)[-1] in ("get_store", "CatalogQuery")
    ]
    assert found == []


def test_the_checks_see_every_way_of_importing() -> None:
    """The reader above finds the lazy names of the package and import_module calls."""
    tree = ast.parse(
        "from modelport import pull\n"
        "def f():\n    import importlib\n    importlib.import_module('modelport.api.store')\n"
        "if TYPE_CHECKING:\n    from modelport.cli import app\n"
    )
    assert sorted(t for t, _ in _imports(tree, type_only=False)) == [
        "modelport",
        "modelport.api",
        "modelport.api.store",
    ]
    assert ("modelport.cli", 6) in set(_imports(tree, type_only=True))
