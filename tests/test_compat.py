"""Compatibility before pulling and before running: opset, operators, memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402

import modelport.api as api  # noqa: E402
from modelport.errors import IncompatibleModelError  # noqa: E402
from modelport.runtime.compat import check_model, supported_opset  # noqa: E402
from tests.catalog_server import CatalogServer, serve_catalogs  # noqa: E402
from tests.test_cli import run  # noqa: E402
from tests.test_onnx_zoo import entry  # noqa: E402


def relu_model(opset: int, *, domain: str = "", op: str = "Relu") -> bytes:
    """x → op → y; with a custom domain when asked."""
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], domain=domain)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    imports = [helper.make_opsetid("", opset)]
    if domain:
        imports.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture
def zoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[CatalogServer]:
    future = supported_opset() + 3
    with serve_catalogs() as server:
        models = {
            "Relu": ("relu.onnx", relu_model(13), 13),
            "Future": ("future.onnx", relu_model(future), future),
            "Custom": ("custom.onnx", relu_model(13, domain="com.acme", op="Magic"), 13),
        }
        manifest = [entry(n, p, d, o, ["math"]) for n, (p, d, o) in models.items()]
        server.routes["/ONNX_HUB_MANIFEST.json"] = (200, json.dumps(manifest).encode())
        for path, data, _ in models.values():
            server.routes[f"/{path}"] = (200, data)
        monkeypatch.setenv("MODELPORT_ONNX_ZOO_URL", server.url)
        api.reset()
        yield server


def test_checks_read_the_runtime_kernel_registry(tmp_path: Path) -> None:
    assert supported_opset() >= 21
    ok = tmp_path / "ok.onnx"
    ok.write_bytes(relu_model(13))
    assert check_model(ok).ok
    future = tmp_path / "future.onnx"
    future.write_bytes(relu_model(supported_opset() + 1))
    [problem] = check_model(future).problems
    assert f"opset {supported_opset() + 1}" in problem and "upgrade onnxruntime" in problem
    custom = tmp_path / "custom.onnx"
    custom.write_bytes(relu_model(13, domain="com.acme", op="Magic"))
    assert "com.acme.Magic" in check_model(custom).problems[0]
    # An operator the preferred GPU provider lacks falls back to the CPU: a warning.
    gpu = check_model(ok, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert gpu.ok
    assert gpu.warnings and "CUDAExecutionProvider lacks Relu" in gpu.warnings[0]
    huge = check_model(ok, size_bytes=10**15, system=api.system_info())
    assert "more than this machine has" in huge.problems[0]


def test_pull_warns_and_run_refuses(
    zoo: CatalogServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "pull", "onnx:future")
    assert code == 0
    assert "warning:" in err and "will not run here" in err
    code, out, err = run(capsys, "run", "onnx:future", "--input", "[[1,2,3,4]]")
    assert code != 0
    assert "cannot run here" in out + err and "upgrade onnxruntime" in out + err
    assert "Traceback" not in out + err
    with pytest.raises(IncompatibleModelError, match=r"com\.acme\.Magic"):
        api.load_model("onnx:custom")
    # A model that fits runs, without warnings at pull time.
    code, out, err = run(capsys, "pull", "onnx:relu")
    assert code == 0 and "warning" not in err
    assert api.run("onnx:relu", [[-1.0, 2.0, -3.0, 4.0]]) == {"y": [[0.0, 2.0, 0.0, 4.0]]}
