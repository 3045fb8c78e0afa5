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


@pytest.mark.parametrize(("optimizing_took", "kept"), [(0.0, False), (1e9, True)])
def test_the_optimized_graph_is_kept_only_if_loading_it_is_faster(
    tmp_path: Path, optimizing_took: float, kept: bool
) -> None:
    """The second load times the saved graph against the first load's optimizing: a copy
    that is not faster is deleted and never written again."""
    import json

    pytest.importorskip("onnxruntime")
    from modelport.runtime.providers import create_session

    model = tmp_path / "model.onnx"
    _tiny_onnx(model)
    cache = tmp_path / "graphs"
    create_session(str(model), preferred="cpu", graph_cache=cache)
    [record] = cache.glob("*.json")
    [graph] = cache.glob("*.onnx")
    # Pretend the first load's optimizing took no time (nothing can beat it) or forever.
    record.write_text(json.dumps({**json.loads(record.read_text()), "plain_s": optimizing_took}))
    create_session(str(model), preferred="cpu", graph_cache=cache)
    assert json.loads(record.read_text())["verdict"] == ("keep" if kept else "plain")
    assert graph.exists() is kept
    create_session(str(model), preferred="cpu", graph_cache=cache)
    assert graph.exists() is kept
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []
