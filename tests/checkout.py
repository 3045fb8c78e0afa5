"""What the test suite may leave in the checkout: nothing but tool caches."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

__all__ = ["ROOT", "TREE_KEY", "tree_changes", "tree_state"]

ROOT = Path(__file__).resolve().parents[1]

#: The checkout's state when the session started (None: not a git checkout).
TREE_KEY = pytest.StashKey["set[str] | None"]()

# Caches that tools (not modelport) write into the checkout while it is tested.
_TOOL_CACHES = (
    "__pycache__/",
    ".pytest_cache/",
    ".hypothesis/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".egg-info/",
)


def tree_state(root: Path) -> set[str] | None:
    """``git status --porcelain --ignored`` of ``root`` as a set of lines (None: not git)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--ignored=matching", "-uall"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return {
        line
        for line in done.stdout.splitlines()
        if line and not any(part in line for part in _TOOL_CACHES)
    }


def tree_changes(before: set[str] | None, after: set[str] | None) -> list[str]:
    """Lines of the status that appeared since ``before`` (nothing when either is unknown)."""
    if before is None or after is None:
        return []
    return sorted(after - before)
