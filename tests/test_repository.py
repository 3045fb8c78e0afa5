"""The repository's own instructions: the README's test command works with the pip a
fresh venv brings, and CI runs the linters and the type checker as well as the tests."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]


def _extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return dict(project["optional-dependencies"])


def test_the_readme_installs_with_the_pip_of_a_fresh_venv() -> None:
    installs = [c for c in _readme_commands() if "pip install" in c]
    assert any("python -m pytest" in c for c in _readme_commands())
    assert installs
    # pip < 25.1 (what `python3 -m venv` brings) knows no dependency groups.
    assert [c for c in installs if "--group" in c] == []
    extras = _extras()
    named = {
        e.strip()
        for c in installs
        for group in re.findall(r"\.\[([^]]+)\]", c)
        for e in group.split(",")
    }
    assert "dev" in named and named <= set(extras)
    dev = " ".join(extras["dev"])
    for tool in ("pytest", "hypothesis", "ruff", "mypy"):
        assert tool in dev, tool


def test_ci_runs_the_linters_the_type_checker_and_the_readmes_install() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.strip() for line in script.splitlines()]
    assert "set -euo pipefail" in lines
    checked = lines[: lines.index("set +e")]  # under set -e: any failure fails CI
    for check in (
        "ruff check src tests benchmarks",
        "ruff format --check src tests benchmarks",
        "mypy src",
    ):
        assert check in checked, check
    readme_extras = {
        group
        for c in _readme_commands()
        if "python -m pytest" in c
        for group in re.findall(r"\.\[[^]]+\]", c)
    }
    assert readme_extras and all(group in script for group in readme_extras)
    assert "python -m pytest" in script
