"""Export a TensorFlow SavedModel to ONNX with ``tf2onnx``, checked against TensorFlow.

``tf2onnx``'s command line is its supported SavedModel path (its Python
``from_function`` wants a ``tf.function``, not a signature's concrete function), so it
runs as ``python -m tf2onnx.convert`` in a child process; the parity check then runs
the SavedModel's ``serving_default`` signature here on the same generated inputs as
ONNX Runtime.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.convert.parity import Reference
from modelport.convert.torchhub import InputShape
from modelport.errors import ConversionError, MissingExtraError

__all__ = ["export_saved_model"]

#: What a dynamic dimension becomes in generated inputs: batch 2 (so batching is
#: exercised), 224 for image sides, 16 otherwise.
_BATCH = 2


def _require() -> Any:
    try:
        import tensorflow as tf
        import tf2onnx  # noqa: F401
    except ImportError:
        raise MissingExtraError("tf", feature="Converting TensorFlow models") from None
    return tf


def _inputs(signature: Any, shapes: Sequence[InputShape]) -> dict[str, Any]:
    import numpy as np

    specs = signature.structured_input_signature[1]
    given = {s.name: s for s in shapes if s.name}
    unnamed = [s for s in shapes if not s.name]
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {}
    for index, (name, spec) in enumerate(sorted(specs.items())):
        override = given.get(name) or (unnamed[index] if index < len(unnamed) else None)
        if override is not None:
            dims = list(override.dims)
        else:
            raw = spec.shape.as_list()
            image_like = len(raw) == 4 and raw[-1] == 3
            dims = [
                d if d is not None else (_BATCH if i == 0 else 224 if image_like else 16)
                for i, d in enumerate(raw)
            ]
        dtype = spec.dtype.as_numpy_dtype
        if np.issubdtype(dtype, np.floating):
            arrays[name] = rng.random(dims).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            arrays[name] = rng.integers(0, 100, dims).astype(dtype)
        elif dtype is np.bool_:
            arrays[name] = np.ones(dims, dtype=bool)
        else:
            raise ConversionError(f"Cannot generate inputs of type {spec.dtype.name} for {name!r}.")
    return arrays


def export_saved_model(
    folder: Path, out: Path, *, input_shapes: Sequence[InputShape], opset: int
) -> tuple[str, Reference]:
    """Convert ``folder`` (a SavedModel) to ``out/model.onnx``; returns the task and the
    signature's outputs on generated inputs, in the ONNX graph's output order."""
    import numpy as np
    import onnxruntime as ort

    tf = _require()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--saved-model",
            str(folder),
            "--signature_def",
            "serving_default",
            "--output",
            str(out / "model.onnx"),
            "--opset",
            str(opset),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not (out / "model.onnx").exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConversionError(f"tf2onnx could not convert {folder.name}: {last}")
    try:
        loaded = tf.saved_model.load(str(folder))
        signature = loaded.signatures["serving_default"]
    except (KeyError, OSError, ValueError) as e:
        raise ConversionError(f"Cannot load the SavedModel's serving_default: {e}") from None
    arrays = _inputs(signature, input_shapes)
    expected_map = signature(**{k: tf.constant(v) for k, v in arrays.items()})
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_inputs = [i.name for i in session.get_inputs()]
    feed = {}
    for name in onnx_inputs:
        key = name.split(":")[0]
        if key not in arrays:
            raise ConversionError(f"The ONNX model wants an input {name!r} the signature lacks.")
        feed[name] = arrays[key]
    outputs = [o.name for o in session.get_outputs()]
    expected = []
    for name in outputs:
        key = name.split(":")[0]
        if key not in expected_map:
            key = sorted(expected_map)[outputs.index(name)]
        expected.append(np.asarray(expected_map[key]))
    task = "tensors"
    first = next(iter(arrays.values()))
    if (
        len(arrays) == 1
        and first.ndim == 4
        and 3 in (first.shape[-1], first.shape[1])
        and len(expected) == 1
        and expected[0].ndim == 2
    ):
        task = "image-classification"
    return task, Reference(feed, expected)
