"""``pull`` and ``run`` write nothing outside MODELPORT_HOME: not ONNX Runtime's device id
under ``~/.cache/Microsoft``, not anything beside the user's model.

Each command runs as a user would start it, in a process whose HOME and XDG_CACHE_HOME
are empty temporary folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hf_server import HubServer
from tests.test_pull import tiny_files

pytestmark = pytest.mark.slow


def _user_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    user = tmp_path / "user-home"
    (user / ".cache").mkdir(parents=True)
    env = {**os.environ, "HOME": str(user), "XDG_CACHE_HOME": str(user / ".cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # as on a machine where nobody set it
    return env, user


def _written(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_pull_loads_no_onnx_runtime_and_writes_only_under_modelport_home(
    hub: HubServer, tmp_path: Path
) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    env, user = _user_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelport", "pull", "hf:acme/tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "modelport.store.download" in imported  # the listing is complete
    assert not {m for m in imported if m.split(".")[0] in ("onnxruntime", "onnx", "torch")}
    assert _written(user) == []


def _relu_folder(folder: Path) -> Path:
    """A graph and a GPUX spec: ``modelport run FOLDER`` loads it with ONNX Runtime."""
    from onnx import TensorProto, helper, save

    folder.mkdir()
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(folder / "model.onnx"))
    (folder / "gpux.yml").write_text(
        "name: relu\nversion: 1.0.0\nmodel:\n  source: model.onnx\n"
        "inputs:\n  - {name: x, type: float32, shape: [1, 2]}\n"
        "outputs:\n  - {name: y, type: float32, shape: [1, 2]}\n"
    )
    return folder


def test_a_run_leaves_no_device_id_in_the_users_cache(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _relu_folder(tmp_path / "relu")
    env, user = _user_env(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelport",
            "run",
            str(model),
            "--input",
            '{"x": [[1, -2]]}',
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == {"y": [[1.0, 0.0]]}
    # ONNX Runtime's telemetry writes Microsoft/DeveloperTools/.onnxruntime/deviceid here.
    assert _written(user) == []
    assert _written(model) == ["gpux.yml", "model.onnx"]


def test_a_users_own_onnx_runtime_telemetry_choice_wins() -> None:
    code = "import os, modelport; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    for given, seen in ((None, "1"), ("0", "0")):
        env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
        if given is not None:
            env["ORT_DISABLE_TELEMETRY"] = given
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == seen
