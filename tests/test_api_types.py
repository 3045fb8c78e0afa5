"""The use-cases in ``api/`` are the public API: each names the type it returns."""

from __future__ import annotations

import ast
from pathlib import Path

import modelport.api

API = Path(modelport.api.__file__).parent

#: ``run`` returns what the task's pipeline returns (``runtime.Model.__call__``): vectors,
#: labels, spans or text, by task. It is the one use-case whose result has no single type.
LOOSE_BY_DESIGN = {"running.py:run"}


def test_every_use_case_names_what_it_returns() -> None:
    loose = []
    for path in sorted(API.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                returns = ast.unparse(node.returns) if node.returns else None
                if returns in (None, "Any", "typing.Any"):
                    loose.append(f"{path.name}:{node.name}")
    assert sorted(loose) == sorted(LOOSE_BY_DESIGN)
