"""Compare an ONNX artifact with the PyTorch model it came from, on generated inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import ConversionError, IntegrityError
from modelport.runtime.spec import read_json

__all__ = [
    "FP32_TOLERANCE",
    "INT8_MIN_COSINE",
    "Reference",
    "auto_class",
    "compare_artifact",
    "onnx_reference",
    "parity",
    "parity_inputs",
]

#: Max |ONNX − PyTorch| accepted for float32 artifacts (and optimized ones).
FP32_TOLERANCE = 1e-3
#: Min cosine similarity to PyTorch accepted for int8 artifacts (mean-pooled hidden states or
#: logits). Dynamic int8 of all-MiniLM-L6-v2 reaches about 0.983 on real sentences.
INT8_MIN_COSINE = 0.98


def auto_class(task: str) -> Any:
    """The transformers Auto class for a task."""
    import transformers

    return {
        "feature-extraction": transformers.AutoModel,
        "sentence-similarity": transformers.AutoModel,
        "text-classification": transformers.AutoModelForSequenceClassification,
        "token-classification": transformers.AutoModelForTokenClassification,
        "question-answering": transformers.AutoModelForQuestionAnswering,
        "fill-mask": transformers.AutoModelForMaskedLM,
        "text-generation": transformers.AutoModelForCausalLM,
        "image-classification": transformers.AutoModelForImageClassification,
    }[task]


def parity_inputs(staging: Path, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generated inputs as numpy (for ORT) and torch (for the reference) arrays."""
    import numpy as np
    import torch

    if task == "image-classification":
        config = read_json(staging / "preprocessor_config.json")
        size = config.get("size") or {"height": 224, "width": 224}
        h = int(size.get("height") or size.get("shortest_edge") or 224)
        w = int(size.get("width") or size.get("shortest_edge") or 224)
        crop = config.get("crop_size")
        if isinstance(crop, dict):
            h, w = int(crop["height"]), int(crop["width"])
        pixels = np.random.default_rng(0).standard_normal((2, 3, h, w)).astype(np.float32)
        return {"pixel_values": pixels}, {"pixel_values": torch.from_numpy(pixels)}
    from modelport.runtime.text import TextTokenizer

    tokenizer = TextTokenizer(staging, max_length=128)
    mask = tokenizer.mask_token or ""
    texts = [
        f"The quick brown fox {mask} over the lazy dog near the river bank today.",
        f"Hello {mask} world.",
    ]
    if task == "text-generation":
        texts = ["The quick brown fox jumps over"]
    encodings = tokenizer.encode_batch(texts)
    arrays = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    return arrays, {k: torch.from_numpy(v) for k, v in arrays.items()}


def parity(folder: Path, staging: Path, task: str) -> tuple[float, float]:
    """Max |ONNX − PyTorch| and mean cosine similarity on generated inputs."""
    import numpy as np
    import onnxruntime as ort
    import torch

    np_inputs, torch_inputs = parity_inputs(staging, task)
    session = ort.InferenceSession(str(staging / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = {k: v for k, v in np_inputs.items() if k in names}
    if task == "text-generation":
        for i in session.get_inputs():
            if i.name.startswith("past_key_values"):
                heads, head_dim = i.shape[1], i.shape[3]
                if not isinstance(heads, int) or not isinstance(head_dim, int):
                    from modelport.runtime.generation import _head_dim, _kv_heads

                    config = read_json(folder / "config.json")
                    heads, head_dim = _kv_heads(config), _head_dim(config)
                dtype = np.float16 if "float16" in i.type else np.float32
                feed[i.name] = np.zeros((1, heads, 0, head_dim), dtype=dtype)
        if "position_ids" in names:
            length = np_inputs["input_ids"].shape[1]
            feed["position_ids"] = np.arange(length, dtype=np.int64)[None, :]
    onnx_out = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True)
    )
    model = auto_class(task).from_pretrained(str(folder)).eval()
    import inspect

    # The signature, not __code__: forward is often wrapped by decorators.
    accepted = set(inspect.signature(model.forward).parameters)
    given = {
        k: v
        for k, v in torch_inputs.items()
        if k in accepted and (k in names or k == "pixel_values")
    }
    with torch.no_grad():
        ref = model(**given)
    pairs = []
    for name in ("last_hidden_state", "logits", "start_logits", "end_logits"):
        if name in onnx_out and getattr(ref, name, None) is not None:
            pairs.append((name, onnx_out[name], getattr(ref, name).float().numpy()))
    if not pairs:
        raise IntegrityError(f"Cannot compare the {task} export with PyTorch: no shared outputs.")
    max_diff = 0.0
    cosines = []
    mask = np_inputs.get("attention_mask")
    for name, onnx_value, ref_value in pairs:
        if onnx_value.shape != ref_value.shape:
            raise ConversionError(
                f"The ONNX output has shape {onnx_value.shape}, PyTorch {ref_value.shape}."
            )
        a, b = onnx_value.astype(np.float64), ref_value.astype(np.float64)
        if mask is not None and a.ndim == 3 and a.shape[:2] == mask.shape:
            keep = mask.astype(bool)
            max_diff = max(max_diff, float(np.abs(a[keep] - b[keep]).max()))
            if name == "last_hidden_state":
                # Hidden states are compared as what users get: mean-pooled vectors.
                weights = mask[..., None].astype(np.float64)
                a = (a * weights).sum(axis=1) / weights.sum(axis=1)
                b = (b * weights).sum(axis=1) / weights.sum(axis=1)
            else:
                a, b = a * mask[..., None], b * mask[..., None]  # padding is free to differ
        else:
            max_diff = max(max_diff, float(np.abs(a - b).max()))
        flat_a, flat_b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        dots = (flat_a * flat_b).sum(axis=1)
        norms = np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1)
        cosines.extend((dots / np.clip(norms, 1e-12, None)).tolist())
    return max_diff, float(np.mean(cosines))


def compare_outputs(got: list[Any], expected: list[Any]) -> tuple[float, float]:
    """Max |got − expected| and mean cosine similarity of paired output arrays."""
    import numpy as np

    if len(got) != len(expected):
        raise ConversionError(
            f"The ONNX model gives {len(got)} outputs, the original {len(expected)}."
        )
    max_diff = 0.0
    cosines = []
    for a, b in zip(got, expected, strict=True):
        a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a64.shape != b64.shape:
            raise ConversionError(
                f"The ONNX output has shape {a64.shape}, the original {b64.shape}."
            )
        if a64.size == 0:
            continue
        max_diff = max(max_diff, float(np.abs(a64 - b64).max()))
        fa, fb = (
            a64.reshape(a64.shape[0], -1) if a64.ndim > 1 else a64[None],
            (b64.reshape(b64.shape[0], -1) if b64.ndim > 1 else b64[None]),
        )
        na, nb = np.linalg.norm(fa, axis=1), np.linalg.norm(fb, axis=1)
        norms = na * nb
        safe = np.where(norms == 0, 1.0, norms)
        # Two zero rows agree; a zero row against a non-zero one does not agree at all.
        cos = np.where(
            norms == 0, np.where((na == 0) & (nb == 0), 1.0, 0.0), (fa * fb).sum(axis=1) / safe
        )
        cosines.extend(cos.tolist())
    return max_diff, float(np.mean(cosines)) if cosines else 1.0


@dataclass(frozen=True)
class Reference:
    """Generated inputs (keyed by ONNX input name) and the original model's outputs on
    them, in the ONNX graph's output order: what any artifact is compared with."""

    feed: Mapping[str, Any]
    expected: Sequence[Any]


def compare_artifact(model: Path, reference: Reference) -> tuple[float, float]:
    """Max |artifact − original| and mean cosine, running the artifact on the reference's
    inputs: the numbers of the file that is kept, after any optimization or quantization."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    got = [np.asarray(v) for v in session.run(None, dict(reference.feed))]
    return compare_outputs(got, list(reference.expected))


#: What a dynamic dimension becomes in generated inputs: batch 2 (so batching is
#: exercised), 224 for image sides, 16 otherwise.
_DYNAMIC_BATCH, _DYNAMIC_SIDE, _DYNAMIC_OTHER = 2, 224, 16

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def onnx_reference(model: Path) -> Reference:
    """Inputs generated from an ONNX graph's own input types and shapes, and its outputs."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed: dict[str, Any] = {}
    for arg in session.get_inputs():
        shape = list(arg.shape)
        image_like = len(shape) == 4 and 3 in (shape[1], shape[3])
        dims = [
            d
            if isinstance(d, int) and d > 0
            else (_DYNAMIC_BATCH if i == 0 else _DYNAMIC_SIDE if image_like else _DYNAMIC_OTHER)
            for i, d in enumerate(shape)
        ]
        dtype = _ORT_TYPES.get(arg.type)
        if dtype is None:
            raise ConversionError(
                f"Cannot generate inputs of type {arg.type} for {arg.name!r} to check the model."
            )
        if dtype.startswith("float"):
            feed[arg.name] = rng.standard_normal(dims).astype(dtype)
        elif dtype == "bool":
            feed[arg.name] = np.ones(dims, dtype=bool)
        else:
            feed[arg.name] = rng.integers(0, 100, dims).astype(dtype)
    return Reference(feed, [np.asarray(v) for v in session.run(None, feed)])
