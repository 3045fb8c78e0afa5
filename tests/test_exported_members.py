"""The public API: one sorted literal ``__all__``, the lazy table and the typing imports agree."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import modelport

INIT = Path(modelport.__file__)


def _module_tree() -> ast.Module:
    return ast.parse(INIT.read_text())


def test_all_is_a_sorted_literal_list() -> None:
    literal = None
    for node in _module_tree().body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            literal = ast.literal_eval(node.value)  # raises if it is computed
    assert isinstance(literal, list)
    assert literal == sorted(literal)
    assert len(set(literal)) == len(literal)
    assert modelport.__all__ == literal


def test_all_names_exactly_the_lazy_table() -> None:
    assert set(modelport.__all__) == set(modelport._LAZY) | {"__version__"}


def test_type_checking_imports_name_the_same_objects() -> None:
    # What a type checker sees must be what the lazy table hands out at run time.
    imported: dict[str, str] = {}
    for node in ast.walk(_module_tree()):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in ast.walk(node):
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    imported.update({alias.name: stmt.module for alias in stmt.names})
    assert imported == modelport._LAZY


@pytest.mark.parametrize("name", sorted(modelport._LAZY))
def test_every_lazy_name_comes_from_its_module(name: str) -> None:
    value = getattr(modelport, name)
    assert value is getattr(importlib.import_module(modelport._LAZY[name]), name)
    assert (getattr(value, "__doc__", None) or "").strip(), f"{name} has no docstring"


def test_dir_lists_the_public_api() -> None:
    assert dir(modelport) == modelport.__all__


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        modelport.no_such_thing  # noqa: B018


def test_a_subpackage_of_the_same_name_does_not_hide_the_function() -> None:
    import modelport.convert.export  # Python sets modelport.convert to the subpackage here

    assert callable(modelport.convert)
    assert modelport.convert is importlib.import_module("modelport.api").convert
