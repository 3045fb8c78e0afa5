"""SmoothQuant rewrites MatMuls without changing what the float model computes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from modelport.convert.export import convert_folder
from modelport.convert.smooth import CALIBRATION_TEXTS, smooth_model
from modelport.runtime.text import TextTokenizer
from tests.tiny_models import build_encoder


def test_smoothing_keeps_the_float_outputs_and_helps_int8(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    folder = build_encoder(tmp_path / "enc", "feature-extraction")
    result = convert_folder(folder, out_root=tmp_path / "converted", task="feature-extraction")
    work = tmp_path / "work"
    shutil.copytree(result.path, work)
    errors = smooth_model(work / "model.onnx", work)
    graph = onnx.load(str(work / "model.onnx")).graph
    assert errors
    assert all(0 <= e < 1 and size > 0 for e, size in errors.values())
    smooth_muls = [n for n in graph.node if n.op_type == "Mul" and n.name.endswith("/smooth")]
    assert len(smooth_muls) == len(errors)

    tokenizer = TextTokenizer(work, max_length=64)
    encodings = tokenizer.encode_batch([*CALIBRATION_TEXTS[:4], "An unseen sentence."])
    feed = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }

    def run(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        return session.run(None, {k: v for k, v in feed.items() if k in names})[0]

    before, after = run(result.path / "model.onnx"), run(work / "model.onnx")
    np.testing.assert_allclose(after, before, atol=1e-4, rtol=1e-4)
    quantized = convert_folder(
        folder, out_root=tmp_path / "converted", task="feature-extraction", quantize="int8"
    )
    q_graph = onnx.load(str(quantized.path / "model.onnx")).graph
    assert any(n.name.endswith("/smooth") for n in q_graph.node)
    assert quantized.cosine >= 0.98


def test_the_worst_matmuls_stay_float_within_the_budget() -> None:
    from modelport.convert.smooth import float_matmuls

    report = {
        "ffn_out_0": (0.09, 60),
        "ffn_out_1": (0.07, 60),
        "ffn_in_0": (0.02, 60),
        "qkv_0": (0.06, 20),
        "rest": (0.01, 800),
    }
    # 1000 weights, 8% budget: the worst (60) fits, the next (60 more) would not.
    assert float_matmuls(report) == ["ffn_out_0"]
    assert float_matmuls({"a": (0.01, 10), "b": (0.02, 10)}) == []
