"""The loaded-model cache: a model loaded with other options is another model."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelport.api as api
from modelport.errors import InvalidValueError
from tests.test_usage import _tiny_onnx


def test_a_provider_asked_for_is_never_answered_by_a_model_loaded_for_another(
    tmp_path: Path,
) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the refusal below cannot happen")
    folder = tmp_path / "echo"
    folder.mkdir()
    _tiny_onnx(folder / "model.onnx")
    on_cpu = api.load_model(str(folder))
    assert api.load_model(str(folder)) is on_cpu
    # The CPU model is loaded and cached; asking for CUDA must not be answered with it.
    with pytest.raises(InvalidValueError, match="CUDAExecutionProvider is not available"):
        api.load_model(str(folder), provider="cuda")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"quantize": "int8"}, "--quantize"),
        ({"optimize": True}, "--optimize"),
        ({"task": "text-classification"}, "--task"),
        ({"input_shapes": ["1,2"]}, "--input-shape"),
    ],
)
def test_options_that_convert_are_refused_for_a_folder_ready_to_run(
    tmp_path: Path, options: dict[str, object], named: str
) -> None:
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "echo"
    folder.mkdir()
    _tiny_onnx(folder / "model.onnx")
    ready = api.convert(str(folder)).path  # model.onnx beside its modelport.yml
    with pytest.raises(InvalidValueError) as refused:
        api.load_model(str(ready), **options)  # type: ignore[arg-type]
    assert f"{named} cannot apply to it" in str(refused.value)
    assert api.run(str(ready), [[1.0, 2.0]]) == {"y": [[1.0, 2.0]]}


def test_run_refuses_an_input_shape_for_a_folder_ready_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli import run

    pytest.importorskip("onnxruntime")
    folder = tmp_path / "echo"
    folder.mkdir()
    _tiny_onnx(folder / "model.onnx")
    ready = str(api.convert(str(folder)).path)
    code, out, err = run(capsys, "run", ready, "--input", "[[1, 2]]", "--input-shape", "1,2")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "--input-shape cannot apply to it" in err
