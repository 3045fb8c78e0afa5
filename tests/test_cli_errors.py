"""What the CLI says when something is wrong: paths, JSON errors, a busy port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import run


@pytest.mark.parametrize("path", ["./my-model", "../my-model", "/x/y", "~/no-such-model"])
@pytest.mark.parametrize("command", ["run", "convert"])
def test_a_path_that_does_not_exist_is_no_such_folder(
    capsys: pytest.CaptureFixture[str], command: str, path: str
) -> None:
    args = [command, path] + (["--text", "hi"] if command == "run" else [])
    code, out, err = run(capsys, *args)
    assert code == 2
    assert err.startswith(f"Error: No such folder: {path}.")
    assert "No model matches" not in err
    assert out == ""
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", ["pull", "show", "inspect", "validate", "rm"])
def test_commands_that_take_no_folder_never_look_a_path_up(
    capsys: pytest.CaptureFixture[str], command: str, tmp_path: Path
) -> None:
    code, _, err = run(capsys, command, "./my-model")
    assert code == 2
    assert "'./my-model': it is a path, and no such folder exists." in err
    assert "No model matches" not in err
    (tmp_path / "folder").mkdir()
    code, _, err = run(capsys, command, "./folder")
    assert code == 2
    assert "it is a folder, not a model name" in err


def test_a_file_is_not_a_model_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\0")
    code, _, err = run(capsys, "run", "./model.onnx", "--text", "hi")
    assert code == 2
    assert "./model.onnx is a file, not a model folder." in err


def _json_error(err: str) -> dict[str, object]:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    doc = json.loads(lines[0])
    assert set(doc) == {"error"}
    return dict(doc["error"])


def test_json_commands_report_errors_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    human, _, text = run(capsys, "show", "no-such-model-anywhere-xyz")
    code, out, err = run(capsys, "show", "no-such-model-anywhere-xyz", "--json")
    assert out == ""
    error = _json_error(err)
    assert code == human == error["exit_code"] == 1
    assert error["type"] == "ModelNotFoundError"
    assert error["code"] == "model_not_found"
    assert f"{error['message']} {error['hint']}" in text  # the same sentence as a human gets


def test_json_errors_keep_each_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", "./my-model", "--text", "hi", "--json")
    error = _json_error(err)
    assert (code, error["exit_code"], error["type"]) == (2, 2, "FolderNotFoundError")
    assert error["message"] == "No such folder: ./my-model."
    assert error["hint"]


def test_usage_errors_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    human, _, _ = run(capsys, "models", "--no-such-option")
    code, out, err = run(capsys, "models", "--no-such-option", "--json")
    error = _json_error(err)
    assert code == human == error["exit_code"] == 2
    assert error["type"] == "UsageError"
    assert "--no-such-option" in str(error["message"])
    assert "modelport models --help" in str(error["hint"])
    assert out == ""


def test_json_after_a_double_dash_is_an_argument(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "no-such-model-anywhere-xyz", "--", "--json")
    assert code != 0
    assert not err.startswith("{")


def test_a_json_command_that_succeeds_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "openai:gpt-4o", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["id"] == "openai/gpt-4o"


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )


def test_serve_on_a_busy_port_says_so_with_its_own_exit_code() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve("--host", "127.0.0.1", "--port", str(port))
        assert done.returncode == 4
        assert done.stdout == ""
        assert done.stderr == (
            f"Error: Cannot serve on 127.0.0.1:{port}: the port is already in use. "
            "Stop what listens there, or pick another one with --port.\n"
        )
