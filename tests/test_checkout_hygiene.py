"""The suite leaves the checkout as it found it: the check that enforces it can fail."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.checkout import ROOT, TREE_KEY, tree_changes, tree_state


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def test_a_file_written_into_a_checkout_is_reported(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("/*.onnx\n__pycache__/\n")
    (repo / "kept.txt").write_text("kept\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    before = tree_state(repo)
    assert before == set()
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "x.pyc").write_bytes(b"")  # a tool cache is not the suite's
    assert tree_changes(before, tree_state(repo)) == []
    (repo / "sym_shape_infer_temp.onnx").write_bytes(b"\0")  # ignored, still reported
    (repo / "kept.txt").write_text("changed\n")
    (repo / "new.data").write_bytes(b"\0")
    assert tree_changes(before, tree_state(repo)) == [
        " M kept.txt",
        "!! sym_shape_infer_temp.onnx",
        "?? new.data",
    ]


def test_a_folder_that_is_not_a_checkout_is_not_checked(tmp_path: Path) -> None:
    assert tree_state(tmp_path) is None
    assert tree_changes(None, {"?? x"}) == []


def test_tests_run_in_their_own_folder(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    assert Path.cwd() == tmp_path
    if tree_state(ROOT) is not None:  # a git checkout: the session took its snapshot
        assert pytestconfig.stash[TREE_KEY] is not None


@pytest.fixture(scope="session")
def _cwd_of_a_session_fixture() -> Path:
    return Path.cwd()


def test_session_fixtures_run_outside_the_checkout(_cwd_of_a_session_fixture: Path) -> None:
    assert not _cwd_of_a_session_fixture.is_relative_to(ROOT)
