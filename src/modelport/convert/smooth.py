"""SmoothQuant before dynamic int8: move activation outliers into the weights.

ONNX Runtime's dynamic quantization gives every MatMul input one scale for the whole
tensor, so a few outlier channels (GELU outputs, LayerNorm outputs of BERT-style models)
leave the other channels a handful of int8 levels. SmoothQuant (Xiao et al., 2023)
divides each input channel ``j`` by ``s_j = max|X_j|^α / max|W_j|^(1-α)`` and multiplies
row ``j`` of the weight by it: the product is unchanged in exact arithmetic, and both
operands become easy to quantize. The division is one ``Mul`` per MatMul; the channel
maxima come from running the float model on calibration text.

Some inputs stay hard even then (BERT's first layers' FFN outputs): ``smooth_model``
reports each input's calibrated int8 error, and ``float_matmuls`` picks the worst above
``MAX_INT8_ERROR`` to stay float, within ``FLOAT_BUDGET`` of the weights. On
all-MiniLM-L6-v2 (benchmarks/runtime.py) that is the first layer's FFN output
projection, and the int8 model's pooled cosine to PyTorch at batch 32 × 128 goes from
about 0.975 to about 0.993.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CALIBRATION_TEXTS", "float_matmuls", "smooth_model"]

ALPHA = 0.7
#: Relative int8 error of a MatMul's input (after smoothing) above which it stays float,
#: worst first, while the float MatMuls hold at most FLOAT_BUDGET of the MatMul weights.
MAX_INT8_ERROR = 0.05
FLOAT_BUDGET = 0.08

#: Varied English: short and long, questions, lists, numbers, code-ish and names.
CALIBRATION_TEXTS = (
    "Hello world.",
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "How do I reset my password if I no longer have access to my email account?",
    "Paris is the capital and most populous city of France, with about two million people.",
    "Add 2 cups of flour, 1 teaspoon of salt and 250 ml of warm water, then knead for ten minutes.",
    "The meeting was moved to Thursday at 3:30 pm because the quarterly report was not ready.",
    "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
    "I absolutely loved this movie, the acting was brilliant and the soundtrack unforgettable!",
    "Terrible service. We waited over an hour and the food arrived cold.",
    "Marie Curie won Nobel Prizes in both physics and chemistry, in 1903 and 1911.",
    "Error 404: the requested resource could not be found on this server.",
    "Shares of the company rose 12% after it reported better-than-expected earnings.",
    "Can you recommend a good book about the history of mathematics?",
    "The patient presented with fever, cough and shortness of breath for three days.",
    "Machine learning models can be converted to ONNX and run with ONNX Runtime on many devices.",
)


def _calibration_feeds(session: Any, folder: Path) -> list[dict[str, Any]]:
    import numpy as np

    from modelport.runtime.text import TextTokenizer

    names = {i.name for i in session.get_inputs()}
    tokenizer = TextTokenizer(folder, max_length=128)
    encodings = tokenizer.encode_batch(list(CALIBRATION_TEXTS))
    feeds = []
    arrays = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    feeds.append({k: v for k, v in arrays.items() if k in names})
    # Long sequences of arbitrary tokens reach ranges short sentences do not.
    rng = np.random.default_rng(0)
    vocab = tokenizer.tokenizer.get_vocab_size()
    ids = rng.integers(min(1000, vocab // 4), vocab - 1, (8, 128)).astype(np.int64)
    random_arrays = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }
    feeds.append({k: v for k, v in random_arrays.items() if k in names})
    return feeds


def _probe(model: Any, tensors: list[str]) -> Any:
    """A session over ``model`` that also outputs the named intermediate tensors."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in tensors:
        probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    return ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])


def _int8_error(x: Any) -> float:
    """Relative error of quantizing ``x`` as ORT's DynamicQuantizeLinear does (uint8, one scale)."""
    import numpy as np

    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255 or 1.0
    zero = np.round(-low / scale)
    restored = (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale
    return float(np.linalg.norm(restored - x) / (np.linalg.norm(x) or 1.0))


def smooth_model(
    model_path: Path, tokenizer_folder: Path, *, alpha: float = ALPHA
) -> dict[str, tuple[float, int]]:
    """Rewrite ``model_path`` in place with smoothed MatMuls.

    Returns, for each smoothed MatMul, its calibrated int8 input error (relative, after
    smoothing) and its weight's size, so that the worst can stay in float within a budget.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    targets = [
        n
        for n in graph.node
        if n.op_type == "MatMul"
        and n.input[1] in initializers
        and len(initializers[n.input[1]].dims) == 2
    ]
    if not targets:
        return {}
    session = _probe(model, [n.input[0] for n in targets])
    feeds = _calibration_feeds(session, tokenizer_folder)
    wanted = [n.input[0] for n in targets]
    maxima: dict[str, Any] = {}
    for feed in feeds:
        for name, value in zip(wanted, session.run(wanted, feed), strict=True):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            maxima[name] = np.maximum(maxima.get(name, channel_max), channel_max)
    smoothed: list[Any] = []
    for n in targets:
        weight = numpy_helper.to_array(initializers[n.input[1]]).astype(np.float32)
        x_max = maxima[n.input[0]] + 1e-5
        w_max = np.abs(weight).max(axis=1) + 1e-5
        if x_max.shape != w_max.shape:
            continue
        scale = np.clip(x_max**alpha / w_max ** (1 - alpha), 1e-2, 1e3).astype(np.float32)
        initializers[n.input[1]].CopyFrom(
            numpy_helper.from_array(weight * scale[:, None], n.input[1])
        )
        inverse = f"{n.name}/smooth_scale"
        graph.initializer.append(numpy_helper.from_array(1.0 / scale, inverse))
        output = f"{n.input[0]}/smoothed_for/{n.name}"
        graph.node.insert(
            list(graph.node).index(n),
            helper.make_node("Mul", [n.input[0], inverse], [output], name=f"{n.name}/smooth"),
        )
        n.input[0] = output
        smoothed.append(n)
    onnx.save(model, str(model_path))
    # A second pass measures what int8 would still lose on each smoothed input.
    session = _probe(model, [n.input[0] for n in smoothed])
    errors: dict[str, float] = {}
    names = [n.input[0] for n in smoothed]
    for feed in feeds:
        for n, value in zip(smoothed, session.run(names, feed), strict=True):
            errors[n.name] = max(errors.get(n.name, 0.0), _int8_error(value))
    sizes = {n.name: int(np.prod(initializers[n.input[1]].dims)) for n in smoothed}
    return {name: (error, sizes[name]) for name, error in errors.items()}


def float_matmuls(report: dict[str, tuple[float, int]]) -> list[str]:
    """The smoothed MatMuls to keep in float: worst int8 error first, within the budget."""
    total = sum(size for _, size in report.values()) or 1
    kept: list[str] = []
    used = 0
    for name, (error, size) in sorted(report.items(), key=lambda kv: -kv[1][0]):
        if error <= MAX_INT8_ERROR or (used + size) / total > FLOAT_BUDGET:
            break
        kept.append(name)
        used += size
    return kept
