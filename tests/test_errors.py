"""The exception tree drawn in ``errors.py``'s docstring is the real class hierarchy."""

from __future__ import annotations

import builtins
import inspect
import re
from pathlib import Path

import modelport.errors as errors
from modelport.errors import ModelportError


def _drawn_tree() -> dict[str, tuple[str | None, set[str]]]:
    """name -> (parent drawn above it, builtins named in "(also X, Y)")."""
    doc = errors.__doc__ or ""
    lines = doc.split("    ModelportError\n", 1)[1].split("\n\n", 1)[0].splitlines()
    tree: dict[str, tuple[str | None, set[str]]] = {"ModelportError": (None, set())}
    stack: list[tuple[int, str]] = [(-1, "ModelportError")]
    for line in lines:
        connector = max(line.find("├── "), line.find("└── "))
        assert connector >= 0, f"not a tree line: {line!r}"
        match = re.match(r"(\w+)\s*(?:\(also ([\w, ]+)\))?", line[connector + 4 :])
        assert match, line
        name, also = match.group(1), match.group(2)
        while stack[-1][0] >= connector:
            stack.pop()
        assert name not in tree, f"{name} is drawn twice"
        tree[name] = (stack[-1][1], {a.strip() for a in also.split(",")} if also else set())
        stack.append((connector, name))
    return tree


def _classes() -> dict[str, type[ModelportError]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, ModelportError) and cls.__module__ == errors.__name__
    }


def test_every_class_is_drawn_and_every_drawn_name_is_a_class() -> None:
    assert set(_drawn_tree()) == set(_classes())


def test_each_class_hangs_under_its_real_parent() -> None:
    classes = _classes()
    for name, (parent, _also) in _drawn_tree().items():
        if parent is None:
            continue
        bases = [b.__name__ for b in classes[name].__bases__ if issubclass(b, ModelportError)]
        assert bases == [parent], f"{name} is drawn under {parent}, but derives from {bases}"


def test_the_builtins_named_are_the_builtins_mixed_in() -> None:
    classes = _classes()
    for name, (_parent, also) in _drawn_tree().items():
        cls = classes[name]
        for builtin in also:
            assert issubclass(cls, getattr(builtins, builtin)), f"{name} is no {builtin}"
        # A builtin mixed in directly is always named.
        direct = {
            b.__name__
            for b in cls.__bases__
            if not issubclass(b, ModelportError) and b is not Exception
        }
        assert direct <= also, f"{name} mixes in {direct - also} without saying so"


def test_all_lists_every_class() -> None:
    assert sorted(errors.__all__) == sorted(_classes())
    assert errors.__all__ == sorted(errors.__all__)


def test_hints_name_cli_flags_not_python_keywords() -> None:
    package = Path(errors.__file__).parent
    found = [
        f"{path.relative_to(package)}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for line in path.read_text().splitlines()
        if "hint" in line and re.search(r"\b[a-z_]+=(True|False|None)\b", line)
    ]
    assert found == []


def _hints() -> list[tuple[str, str]]:
    """Every hint the package writes (``hint=…`` arguments and ``hint = …`` values), as
    where and its literal text, however many lines it spans."""
    import ast

    package = Path(errors.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_hint = (isinstance(node, ast.keyword) and node.arg == "hint") or (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "hint" for t in node.targets)
            )
            if is_hint:
                value = node.value  # type: ignore[union-attr]
                text = " ".join(
                    c.value
                    for c in ast.walk(value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
                found.append((f"{path.relative_to(package)}:{value.lineno}", text))
    return found


def test_every_flag_a_hint_names_is_an_option_of_the_cli() -> None:
    import typer.main

    from modelport.cli.app import app

    options: set[str] = set()

    def walk(command: object) -> None:
        for param in getattr(command, "params", ()):
            options.update(o for o in param.opts + param.secondary_opts if o.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    hints = _hints()
    assert len(hints) > 50 and "--replace" in options
    unknown = [
        f"{where}: {flag}"
        for where, text in hints
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text)
        if flag not in options
    ]
    assert unknown == []
    keywords = [
        f"{where}: {text}"
        for where, text in hints
        if re.search(r"\b[a-z_]+=(True|False|None)\b", text)
    ]
    assert keywords == []
