"""The use-cases in ``api/`` are the public API: each names the type it returns."""

from __future__ import annotations

import ast
from pathlib import Path

import modelport.api

API = Path(modelport.api.__file__).parent

#: ``run`` returns what the task's pipeline returns (``runtime.Model.__call__``): vectors,
#: labels, spans or text, by task. It is the one use-case whose result has no single type.
#: ``hub_info`` returns a JSON document whose shape depends on the hub (a code hub lists
#: entry points): a mapping of names, not ``Any``.
LOOSE_BY_DESIGN = {"running.py:run": "Any", "store.py:hub_info": "dict[str, Any]"}


def test_every_use_case_names_what_it_returns() -> None:
    loose: dict[str, str] = {}
    for path in sorted(API.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                returns = ast.unparse(node.returns) if node.returns else "None?"
                # Any anywhere in the result (list[Any] too) leaves the caller guessing.
                if returns == "None?" or "Any" in returns:
                    loose[f"{path.name}:{node.name}"] = returns
    assert loose == LOOSE_BY_DESIGN
