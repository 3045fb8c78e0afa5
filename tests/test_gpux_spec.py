"""GPUX's ``gpux.yml``, written the way GPUX's own examples write it, is read and runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from modelport.errors import ConfigError
from modelport.runtime.spec import read_spec
from tests.conftest import FIXTURES

EXAMPLES = sorted(p.parent.name for p in (FIXTURES / "gpux").glob("*/gpux.yml"))


def test_the_published_examples_are_all_here() -> None:
    assert EXAMPLES == [
        "image-classification",
        "llm-chat",
        "object-detection",
        "quick-start",
        "sentiment-analysis",
        "speech-recognition",
    ]


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_published_example_is_read_as_written(example: str) -> None:
    folder = FIXTURES / "gpux" / example
    raw = yaml.safe_load((folder / "gpux.yml").read_text())
    spec = read_spec(folder)
    assert spec.name == raw["name"]
    assert spec.model.source == raw["model"]["source"]
    for section in ("inputs", "outputs"):
        tensors = getattr(spec, section)
        assert [t.name for t in tensors] == list(raw[section])  # the mapping's order
        for tensor in tensors:
            written = raw[section][tensor.name]
            assert tensor.type == written["type"]
            assert tensor.shape == written.get("shape", [])
            assert tensor.labels == written.get("labels")
            assert tensor.max_length == written.get("max_length")
            assert tensor.required == written.get("required", True)
    if "serving" in raw:
        assert spec.serving.timeout == raw["serving"]["timeout"]
        assert spec.serving.host == raw["serving"]["host"]
    assert spec.runtime.gpu.memory == raw["runtime"]["gpu"]["memory"]
    for key, value in (raw.get("preprocessing") or {}).items():
        assert getattr(spec.preprocessing, key) == value  # letterbox, sample_rate … kept too


def test_a_hub_tokenizer_and_labels_are_kept() -> None:
    spec = read_spec(FIXTURES / "gpux" / "sentiment-analysis")
    assert spec.preprocessing.tokenizer == "bert-base-uncased"
    assert spec.preprocessing.max_length == 512
    assert spec.outputs[0].labels == ["negative", "positive"]
    quick = read_spec(FIXTURES / "gpux" / "quick-start")
    assert (quick.inputs[0].name, quick.inputs[0].type, quick.inputs[0].max_length) == (
        "text",
        "string",
        512,
    )


def test_scalar_shorthand_units_and_empty_sections(tmp_path: Path) -> None:
    (tmp_path / "gpux.yml").write_text(
        "name: tiny\nversion: 1.0\ndescription:\nmodel:\n  source: m.onnx\n"
        "inputs:\n  text: string\n  ids: {type: int64, shape: null}\n"
        "outputs:\n  - {name: logits, type: float32, shape: [1, 2]}\n"
        "runtime:\n  timeout: 5s\n  gpu: {memory: 1GB}\n"
        "serving:\npreprocessing:\nmetadata:\n  owner: me\n"
    )
    spec = read_spec(tmp_path)
    assert [(t.name, t.type, t.shape) for t in spec.inputs] == [
        ("text", "string", []),
        ("ids", "int64", []),
    ]
    assert spec.outputs[0].shape == [1, 2]
    assert spec.runtime.timeout == 5
    assert (spec.version, spec.description) == ("1.0", "")
    assert spec.serving.port == 8080
    assert spec.preprocessing.tokenizer is None
    (tmp_path / "gpux.yml").write_text("name: t\nserving:\n  timeout: 500ms\n")
    assert read_spec(tmp_path).serving.timeout == 0.5


def test_a_bad_timeout_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "gpux.yml").write_text("name: t\nruntime:\n  timeout: soon\n")
    with pytest.raises(ConfigError) as info:
        read_spec(tmp_path)
    text = info.value.one_line()
    assert "runtime.timeout" in text
    assert "'soon'" in text
    assert "Value error" not in text
    assert "\n" not in text


def _tiny_classifier(path: Path) -> None:
    """input [1,3,224,224] → average per channel → 3×1000 → output [1,1000]."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    weights = np.linspace(-1, 1, 3 * 1000, dtype=np.float32).reshape(3, 1000)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["output"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1000])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))


def test_a_published_example_runs_beside_its_model(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import numpy as np

    import modelport.api as api

    folder = tmp_path / "image-classification"
    shutil.copytree(FIXTURES / "gpux" / "image-classification", folder)
    _tiny_classifier(folder / "resnet50.onnx")
    image = np.ones((1, 3, 224, 224), dtype=np.float32)
    image[0, 1] = 2.0
    answer = api.run(str(folder), {"input": image.tolist()})
    output = np.asarray(answer["output"])
    assert output.shape == (1, 1000)
    weights = np.linspace(-1, 1, 3 * 1000, dtype=np.float32).reshape(3, 1000)
    np.testing.assert_allclose(output[0], np.array([1.0, 2.0, 1.0]) @ weights, atol=1e-6)
