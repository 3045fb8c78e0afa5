"""Served models as named tensors, for the tensor protocols (KServe V2, GPUX ``/predict``).

A model is seen one of two ways:

- **graph**: its ONNX graph's own inputs and outputs, fed and returned as they are. This is
  how any ONNX graph (the ``tensors`` task) is served, and every model that has no text
  mapping below.
- **text**: an embedding or classification model takes texts and gives its task's answer
  as tensors, computed by the same pipeline (and the same dynamic batches) as every
  other route:

  - ``feature-extraction`` / ``sentence-similarity``: ``text`` (string ``[n]``) →
    ``embedding`` (float32 ``[n, d]``), pooled and normalized as the model's files say.
  - ``text-classification``: ``text`` (string ``[n]``) → ``scores`` (float32 ``[n, k]``,
    the probabilities of the k labels in label-id order: softmax, or sigmoid for
    multi-label and single-logit models) and ``label`` (string ``[n]``, the best label).

Types are numpy's names (``float32``, ``int64``, ``bool``) and ``string``; a dimension the
model leaves open is -1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.errors import InputTooLongError, InvalidValueError

if TYPE_CHECKING:
    from modelport.server.pool import ModelPool, ServedModel

__all__ = [
    "MAX_TEXTS",
    "TEXT_TASKS",
    "Signature",
    "TensorInfo",
    "as_array",
    "check_inputs",
    "check_names",
    "check_outputs",
    "run",
    "signature",
]

#: Tasks served as texts in, tensors out (every other model is served as its graph).
TEXT_TASKS = frozenset({"feature-extraction", "sentence-similarity", "text-classification"})

#: Texts one request may carry (as OpenAI's embeddings route allows).
MAX_TEXTS = 2048

#: ONNX Runtime's element types by the numpy name the protocols use.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}


@dataclass(frozen=True)
class TensorInfo:
    """One input or output: its name, element type and shape (-1 where open)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Signature:
    """What a served model takes and gives, and whether texts or its graph."""

    mode: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def input(self, name: str) -> TensorInfo | None:
        """The input of that name, if the model has one."""
        return next((t for t in self.inputs if t.name == name), None)


def _shape(dims: Sequence[Any] | None) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in dims or ())


def signature(served: ServedModel, *, texts: bool = True) -> Signature:
    """The model's tensors: texts in for the text tasks (unless ``texts`` is False), else
    its graph's inputs and outputs (those that are tensors)."""
    session = served.model.session
    if texts and served.task in TEXT_TASKS:
        return _text_signature(served)
    return Signature(
        "graph",
        tuple(
            TensorInfo(i.name, _ORT_TYPES[i.type], _shape(i.shape))
            for i in session.get_inputs()
            if i.type in _ORT_TYPES
        ),
        tuple(
            TensorInfo(o.name, _ORT_TYPES[o.type], _shape(o.shape))
            for o in session.get_outputs()
            if o.type in _ORT_TYPES
        ),
    )


def _text_signature(served: ServedModel) -> Signature:
    outputs = {o.name: _shape(o.shape) for o in served.model.session.get_outputs()}
    text = (TensorInfo("text", "string", (-1,)),)
    if served.task == "text-classification":
        width = len(served.model.pipeline.labels()) or next(iter(outputs.values()))[-1]
        return Signature(
            "text",
            text,
            (
                TensorInfo("scores", "float32", (-1, width)),
                TensorInfo("label", "string", (-1,)),
            ),
        )
    if "sentence_embedding" in outputs:
        width = outputs["sentence_embedding"][-1]
    else:
        hidden = outputs.get("last_hidden_state") or outputs.get("token_embeddings")
        hidden = hidden or next(iter(outputs.values()))
        modes = served.model.spec.modelport.get("pooling") or ["mean"]
        width = hidden[-1] * len(modes) if hidden[-1] >= 0 else -1
    return Signature("text", text, (TensorInfo("embedding", "float32", (-1, width)),))


def _show(info: TensorInfo, type_name: Callable[[str], str]) -> str:
    return f"{info.name} ({type_name(info.dtype)} {list(info.shape)})"


def check_names(
    model: str,
    sig: Signature,
    names: Sequence[str],
    *,
    type_name: Callable[[str], str] = str,
) -> None:
    """Refuse an input the model lacks, and a missing one it needs, naming what it takes."""
    for name in names:
        if sig.input(name) is None:
            takes = ", ".join(_show(t, type_name) for t in sig.inputs)
            raise InvalidValueError(f"{model} has no input {name!r}; it takes {takes}.")
    for info in sig.inputs:
        if info.name not in names:
            raise InvalidValueError(
                f"{model} needs the input {_show(info, type_name)}; the request lacks it."
            )


def check_inputs(
    model: str,
    sig: Signature,
    arrays: Mapping[str, Any],
    *,
    type_name: Callable[[str], str] = str,
) -> None:
    """Refuse inputs the model lacks, inputs it needs and misses, and shapes it cannot take
    (each in one sentence that names what the model takes)."""
    check_names(model, sig, list(arrays), type_name=type_name)
    if sig.mode == "text":
        return  # texts come in any shape: its elements, in order, are the texts
    for info in sig.inputs:
        got = tuple(arrays[info.name].shape)
        if len(got) != len(info.shape) or any(
            want >= 0 and want != n for want, n in zip(info.shape, got, strict=True)
        ):
            raise InvalidValueError(
                f"The input {info.name} has shape {list(got)}; {model} takes "
                f"{list(info.shape)} (-1: any size)."
            )


def as_array(name: str, data: Any, dtype: str, *, type_name: Callable[[str], str] = str) -> Any:
    """JSON data (nested lists, or one value) as an array of ``dtype``, refusing values of
    another kind (text for numbers, fractions for integers) and integers out of range."""
    import numpy as np

    if dtype == "bfloat16":  # numpy has no bfloat16 to cast JSON numbers to
        raise InvalidValueError(f"The input {name} is bfloat16, which modelport does not take.")
    try:
        values = np.asarray(data)
    except ValueError:
        raise InvalidValueError(
            f"The data of the input {name} is not a regular array (its rows differ in length)."
        ) from None
    if values.size == 0:
        return np.empty(values.shape, dtype=object if dtype == "string" else dtype)
    if dtype == "string":
        allowed = "U"
    elif dtype == "bool":
        allowed = "b"
    elif dtype.startswith(("int", "uint")):
        allowed = "iu"
    else:
        allowed = "iuf"
    if values.dtype.kind not in allowed:
        example = values.flat[0]  # a numpy scalar, or the Python object of an object array
        example = example.item() if isinstance(example, np.generic) else example
        raise InvalidValueError(
            f"The input {name} takes {type_name(dtype)} values, not {example!r}."
        )
    if dtype == "string":
        return values.astype(object)
    cast = values.astype(dtype)
    if values.dtype.kind in "iu" and not np.array_equal(cast, values):
        raise InvalidValueError(f"The values of the input {name} do not fit in {type_name(dtype)}.")
    return cast


def check_outputs(model: str, sig: Signature, names: Sequence[str]) -> None:
    """Refuse a requested output the model does not give."""
    gives = {o.name for o in sig.outputs}
    for name in names:
        if name not in gives:
            raise InvalidValueError(
                f"{model} has no output {name!r}; it gives "
                + ", ".join(o.name for o in sig.outputs)
                + "."
            )


async def run(
    pool: ModelPool,
    served: ServedModel,
    sig: Signature,
    arrays: Mapping[str, Any],
    outputs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The model's outputs (all, or those named) as numpy arrays, for checked inputs."""
    wanted = list(outputs) if outputs else [o.name for o in sig.outputs]
    if sig.mode == "text":
        answers = await _run_texts(pool, served, sig, arrays["text"])
        return {name: answers[name] for name in wanted}
    feed = dict(arrays)
    session = served.model.session

    def call() -> list[Any]:
        return session.run(wanted, feed)  # type: ignore[no-any-return]

    try:
        values = await pool.run(served, call)
    except Exception as e:
        if not _from_onnxruntime(e):
            raise
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code …": the reason.
        reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text).rstrip(".")
        raise InvalidValueError(
            f"ONNX Runtime cannot run {served.name} on these inputs: {reason}."
        ) from None
    return dict(zip(wanted, values, strict=True))


def _from_onnxruntime(error: Exception) -> bool:
    """Whether ONNX Runtime refused the inputs (a shape its graph cannot combine…)."""
    return type(error).__module__.startswith("onnxruntime")


async def _run_texts(
    pool: ModelPool, served: ServedModel, sig: Signature, array: Any
) -> dict[str, Any]:
    import numpy as np

    texts = [str(t) for t in array.reshape(-1).tolist()]
    if not texts:
        raise InvalidValueError("The input text holds no texts.")
    if len(texts) > MAX_TEXTS:
        raise InvalidValueError(
            f"The input text holds {len(texts)} texts; at most {MAX_TEXTS} per request."
        )
    tokenizer = served.tokenizer
    counts = await pool.run(served, lambda: tokenizer.count(texts), inputs=0)
    limit = tokenizer.max_length
    if limit:
        for i, n in enumerate(counts):
            if n > limit:
                raise InputTooLongError(served.name, n, limit, param="text", what=f"text [{i}]")
    if pool.metrics is not None:
        pool.metrics.count_tokens(served.name, prompt=sum(counts))
    assert served.batcher is not None  # every text task is batched
    if served.task != "text-classification":
        vectors = await served.batcher.submit(texts, counts)
        return {"embedding": np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)}
    rows = await served.batcher.submit(texts, counts, top_k=None)
    labels = served.model.pipeline.labels()
    width = len(rows[0])
    order = [labels.get(i, f"LABEL_{i}") for i in range(width)]
    scores = np.array(
        [[{r["label"]: r["score"] for r in row}[name] for name in order] for row in rows],
        dtype=np.float32,
    )
    best = np.array([row[0]["label"] for row in rows], dtype=object)
    return {"scores": scores, "label": best}
