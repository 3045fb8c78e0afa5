"""Export a model folder to ONNX, check it against PyTorch, optimize and quantize it.

The exporter made for the job does the work: ``optimum-onnx``'s ``main_export`` with the
task given explicitly, falling back to ``torch.onnx.export`` for encoders. Every artifact
is compared with the PyTorch model on generated inputs; one over tolerance is removed and
the conversion fails with the numbers. Artifacts are cached by source digest, exporter
versions, opset and options, and become visible by one atomic rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from modelport.convert.detect import detect_folder
from modelport.errors import IntegrityError, InvalidValueError, MissingExtraError, ModelportError

__all__ = [
    "CONVERTIBLE_TASKS",
    "ConversionError",
    "ConversionResult",
    "conversion_key",
    "convert_folder",
    "source_digest",
]

DEFAULT_OPSET = 18
#: Max |ONNX − PyTorch| accepted for float32 artifacts (and optimized ones).
FP32_TOLERANCE = 1e-3
#: Min cosine similarity to PyTorch accepted for int8 artifacts (mean-pooled hidden states or
#: logits). Dynamic int8 of all-MiniLM-L6-v2 reaches about 0.983 on real sentences.
INT8_MIN_COSINE = 0.98

# modelport task → optimum task
CONVERTIBLE_TASKS: dict[str, str] = {
    "feature-extraction": "feature-extraction",
    "sentence-similarity": "feature-extraction",
    "text-classification": "text-classification",
    "token-classification": "token-classification",
    "question-answering": "question-answering",
    "fill-mask": "fill-mask",
    "text-generation": "text-generation-with-past",
    "image-classification": "image-classification",
}

_ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


class ConversionError(ModelportError):
    """An export failed or its outputs differ from the original model's."""

    code = "conversion_failed"
    http_status = 422


@dataclass(frozen=True)
class ConversionResult:
    """A converted artifact and how it was checked."""

    path: Path
    task: str
    key: str
    max_abs_diff: float
    cosine: float
    opset: int
    optimize: bool
    quantize: str | None
    seconds: float
    cached: bool


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def _require_convert() -> None:
    for module in ("torch", "transformers", "onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError("convert", feature="Converting models to ONNX") from None


def source_digest(folder: Path) -> str:
    """A digest of every file in a folder (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def conversion_key(
    source: str, *, task: str, opset: int, optimize: bool, quantize: str | None
) -> str:
    """The cache key: source digest, exporter versions, opset and options."""
    parts = {
        "source": source,
        "task": task,
        "opset": opset,
        "optimize": optimize,
        "quantize": quantize,
        "exporter": {
            p: _version(p) for p in ("optimum-onnx", "transformers", "torch", "onnx", "onnxruntime")
        },
        "format": 1,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def convert_folder(
    folder: Path,
    *,
    out_root: Path,
    task: str | None = None,
    card_task: str | None = None,
    source: str | None = None,
    name: str | None = None,
    opset: int = DEFAULT_OPSET,
    optimize: bool = False,
    quantize: str | None = None,
) -> ConversionResult:
    """Convert (or find in the cache) the model in ``folder``; returns where it lives."""
    import time

    if quantize not in (None, "int8"):
        raise InvalidValueError(f"Unknown quantization {quantize!r}.", hint="Use --quantize int8.")
    if task is None:
        detected = detect_folder(folder, card_task=card_task)
        task = detected.task
    supported = ", ".join(sorted(set(CONVERTIBLE_TASKS)))
    if task is None:
        raise InvalidValueError(
            f"Cannot tell what model {folder} holds: no config.json, sentence-transformers "
            "files or ONNX model say it.",
            hint=f"Pass --task if you know it; supported: {supported}.",
        )
    if task not in CONVERTIBLE_TASKS:
        raise InvalidValueError(
            f"modelport cannot convert {task} models to ONNX yet ({folder.name}).",
            hint=f"Supported tasks: {supported}.",
        )
    key = conversion_key(
        source or source_digest(folder),
        task=task,
        opset=opset,
        optimize=optimize,
        quantize=quantize,
    )
    target = out_root / key
    if (target / "modelport.yml").exists():
        spec_data = _read_yaml(target / "modelport.yml")
        parity = spec_data.get("modelport", {}).get("parity", {})
        return ConversionResult(
            target,
            task,
            key,
            float(parity.get("max_abs_diff", 0.0)),
            float(parity.get("cosine", 1.0)),
            opset,
            optimize,
            quantize,
            0.0,
            True,
        )
    started = time.perf_counter()
    onnx_files = sorted(folder.glob("*.onnx"))
    if onnx_files and not (folder / "config.json").exists():
        # Already ONNX (a zoo model): no export and no torch; inputs and outputs come
        # from the model itself.
        _adopt(folder, onnx_files[0], out_root, key, task, name or folder.name, opset, source)
        return ConversionResult(
            out_root / key,
            task,
            key,
            0.0,
            1.0,
            opset,
            False,
            None,
            time.perf_counter() - started,
            False,
        )
    _require_convert()
    staging = out_root / f".{key}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        _export(folder, staging, task, opset)
        _ensure_tokenizer(folder, staging, task)
        for name_ in _ST_FILES:
            if (folder / name_).exists():
                shutil.copy2(folder / name_, staging / name_)
        for sub in folder.iterdir():
            if sub.is_dir() and sub.name[:1].isdigit() and "_" in sub.name:
                shutil.copytree(sub, staging / sub.name, dirs_exist_ok=True)
        if optimize:
            _optimize(staging, folder)
        if quantize == "int8":
            _quantize(staging)
        max_diff, cosine = _parity(folder, staging, task)
        if quantize is None and max_diff > FP32_TOLERANCE:
            raise ConversionError(
                f"The ONNX export of {folder.name} differs from PyTorch by {max_diff:.2e} "
                f"(tolerance {FP32_TOLERANCE:.0e}); the artifact was removed.",
                hint="Try another --opset, or without --optimize.",
            )
        if quantize is not None and cosine < INT8_MIN_COSINE:
            raise ConversionError(
                f"The int8 model agrees with PyTorch only to cosine {cosine:.4f} "
                f"(needs {INT8_MIN_COSINE}); the artifact was removed.",
                hint="Use the float32 conversion for this model.",
            )
        _write_spec(
            staging,
            folder,
            task,
            name or folder.name,
            opset,
            optimize,
            quantize,
            max_diff,
            cosine,
            source,
        )
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "modelport.yml").exists():  # not another process's copy
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ConversionResult(
        target,
        task,
        key,
        max_diff,
        cosine,
        opset,
        optimize,
        quantize,
        time.perf_counter() - started,
        False,
    )


# ---------------------------------------------------------------------- export

#: ImageNet preprocessing, which the zoo's image classifiers expect.
IMAGENET_PREPROCESSOR = {
    "do_resize": True,
    "size": {"shortest_edge": 224},
    "crop_pct": 0.875,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
}


def _adopt(
    folder: Path,
    model: Path,
    out_root: Path,
    key: str,
    task: str,
    name: str,
    opset: int,
    source: str | None,
) -> None:
    """Give a ready ONNX model its spec (and default preprocessing) without exporting it."""
    staging = out_root / f".{key}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        try:
            os.link(model, staging / "model.onnx")
        except OSError:
            shutil.copy2(model, staging / "model.onnx")
        for extra in folder.iterdir():
            if extra.is_file() and extra.name != model.name:
                shutil.copy2(extra, staging / extra.name)
        if task == "image-classification" and not (staging / "preprocessor_config.json").exists():
            (staging / "preprocessor_config.json").write_text(json.dumps(IMAGENET_PREPROCESSOR))
        import onnx

        graph_opset = max(
            (
                o.version
                for o in onnx.load(str(model), load_external_data=False).opset_import
                if o.domain in ("", "ai.onnx")
            ),
            default=opset,
        )
        _write_spec(staging, folder, task, name, graph_opset, False, None, 0.0, 1.0, source)
        try:
            os.replace(staging, out_root / key)
        except OSError:
            if not (out_root / key / "modelport.yml").exists():
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _export(folder: Path, out: Path, task: str, opset: int) -> None:
    try:
        from optimum.exporters.onnx import main_export
    except ImportError:
        main_export = None
    error: Exception | None = None
    if main_export is not None:
        try:
            main_export(
                str(folder),
                output=str(out),
                task=CONVERTIBLE_TASKS[task],
                opset=opset,
                device="cpu",
                do_validation=False,
                library_name="transformers",
            )
        except Exception as e:  # the fallback below, or a clear error
            error = e
        else:
            if (out / "model.onnx").exists():
                return
    if task in ("text-generation", "image-classification"):
        raise ConversionError(
            f"Exporting {folder.name} to ONNX failed: {error or 'optimum-onnx is not installed'}.",
            hint="pip install 'modelport[convert]': optimum-onnx exports decoders and vision.",
        )
    _torch_export(folder, out, task, opset)


def _auto_class(task: str) -> Any:
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


def _torch_export(folder: Path, out: Path, task: str, opset: int) -> None:
    """Plain ``torch.onnx.export`` of an encoder, with dynamic batch and sequence axes."""
    import torch

    model = _auto_class(task).from_pretrained(str(folder)).eval()
    outputs = {
        "feature-extraction": ["last_hidden_state"],
        "sentence-similarity": ["last_hidden_state"],
        "question-answering": ["start_logits", "end_logits"],
    }.get(task, ["logits"])
    names = ["input_ids", "attention_mask"]
    if getattr(model.config, "type_vocab_size", 0) and model.config.model_type in (
        "bert",
        "electra",
        "albert",
        "mobilebert",
        "ernie",
    ):
        names.append("token_type_ids")
    example = tuple(torch.ones((1, 8), dtype=torch.long) for _ in names)
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in names + outputs}
    torch.onnx.export(
        model,
        example,
        str(out / "model.onnx"),
        input_names=names,
        output_names=outputs,
        dynamic_axes=axes,
        opset_version=opset,
        dynamo=False,
    )
    shutil.copy2(folder / "config.json", out / "config.json")


def _ensure_tokenizer(folder: Path, out: Path, task: str) -> None:
    """Make sure a ``tokenizer.json`` (and its configs) sits beside the artifact."""
    if task == "image-classification":
        if (folder / "preprocessor_config.json").exists() and not (
            out / "preprocessor_config.json"
        ).exists():
            shutil.copy2(folder / "preprocessor_config.json", out / "preprocessor_config.json")
        return
    for name in ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (folder / name).exists() and not (out / name).exists():
            shutil.copy2(folder / name, out / name)
    if (out / "tokenizer.json").exists():
        return
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(  # type: ignore[no-untyped-call,unused-ignore]
            str(folder), use_fast=True
        )
    except Exception as e:
        raise ConversionError(f"Cannot build a fast tokenizer for {folder.name}: {e}.") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConversionError(f"{folder.name} has no fast tokenizer to write tokenizer.json from.")
    tokenizer.save_pretrained(str(out))


def _optimize(staging: Path, folder: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((folder / "config.json").read_text())
    model_type = {"gpt2": "gpt2", "bart": "bart", "t5": "t5"}.get(
        config.get("model_type", ""), "bert"
    )
    if config.get("model_type") in ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma"):
        return  # the bert/gpt2 fusions do not apply; ORT's own graph optimizations still run
    path = staging / "model.onnx"
    optimized = optimize_model(str(path), model_type=model_type, num_heads=0, hidden_size=0)
    tmp = staging / "model.optimized.onnx"
    optimized.save_model_to_file(str(tmp))
    os.replace(tmp, path)


def _quantize(staging: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = staging / "model.onnx"
    tmp = staging / "model.int8.onnx"
    quantize_dynamic(
        str(path),
        str(tmp),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": 1},  # float, for outputs of fused ops
    )
    os.replace(tmp, path)
    for extra in staging.glob("model.onnx_data*"):
        extra.unlink()


# ---------------------------------------------------------------------- parity


def _parity_inputs(staging: Path, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generated inputs as numpy (for ORT) and torch (for the reference) arrays."""
    import numpy as np
    import torch

    if task == "image-classification":
        config = _read_json(staging / "preprocessor_config.json")
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


def _parity(folder: Path, staging: Path, task: str) -> tuple[float, float]:
    """Max |ONNX − PyTorch| and mean cosine similarity on generated inputs."""
    import numpy as np
    import onnxruntime as ort
    import torch

    np_inputs, torch_inputs = _parity_inputs(staging, task)
    session = ort.InferenceSession(str(staging / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = {k: v for k, v in np_inputs.items() if k in names}
    if task == "text-generation":
        for i in session.get_inputs():
            if i.name.startswith("past_key_values"):
                heads, head_dim = i.shape[1], i.shape[3]
                if not isinstance(heads, int) or not isinstance(head_dim, int):
                    from modelport.runtime.pipelines import _head_dim, _kv_heads

                    config = _read_json(folder / "config.json")
                    heads, head_dim = _kv_heads(config), _head_dim(config)
                dtype = np.float16 if "float16" in i.type else np.float32
                feed[i.name] = np.zeros((1, heads, 0, head_dim), dtype=dtype)
        if "position_ids" in names:
            length = np_inputs["input_ids"].shape[1]
            feed["position_ids"] = np.arange(length, dtype=np.int64)[None, :]
    onnx_out = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True)
    )
    model = _auto_class(task).from_pretrained(str(folder)).eval()
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


# ---------------------------------------------------------------------- spec


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def _st_settings(folder: Path) -> dict[str, Any]:
    modules = []
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return {}
    settings: dict[str, Any] = {"pooling": ["mean"], "normalize": False}
    for module in modules if isinstance(modules, list) else []:
        kind = str(module.get("type", ""))
        path = folder / str(module.get("path", ""))
        if kind.endswith("Pooling"):
            config = _read_json(path / "config.json")
            modes = [
                mode
                for key, mode in (
                    ("pooling_mode_cls_token", "cls"),
                    ("pooling_mode_mean_tokens", "mean"),
                    ("pooling_mode_max_tokens", "max"),
                    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                    ("pooling_mode_lasttoken", "lasttoken"),
                )
                if config.get(key)
            ]
            settings["pooling"] = modes or ["mean"]
        elif kind.endswith("Normalize"):
            settings["normalize"] = True
        elif not kind.endswith("Transformer"):
            settings.setdefault("unsupported_modules", []).append(kind)
    bert = _read_json(folder / "sentence_bert_config.json")
    if bert.get("max_seq_length"):
        settings["max_seq_length"] = int(bert["max_seq_length"])
    return settings


def _write_spec(
    staging: Path,
    folder: Path,
    task: str,
    name: str,
    opset: int,
    optimize: bool,
    quantize: str | None,
    max_diff: float,
    cosine: float,
    source: str | None,
) -> None:
    import onnx

    from modelport.runtime.spec import ModelSpec, TensorSpec, write_spec

    model = onnx.load(str(staging / "model.onnx"), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}

    def tensors(values: Any) -> list[TensorSpec]:
        out = []
        for v in values:
            if v.name in initializers:
                continue
            dims = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in v.type.tensor_type.shape.dim
            ]
            elem = onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
            out.append(TensorSpec(name=v.name, type=elem, shape=dims))
        return out

    config = _read_json(folder / "config.json")
    labels = (
        config.get("id2label")
        if task in ("text-classification", "token-classification", "image-classification")
        else None
    )
    extra: dict[str, Any] = {
        "task": task,
        "source": {"folder": folder.name, "digest": source},
        "exporter": {
            "optimum-onnx": _version("optimum-onnx"),
            "transformers": _version("transformers"),
            "torch": _version("torch"),
            "onnx": _version("onnx"),
        },
        "opset": opset,
        "options": {"optimize": optimize, "quantize": quantize},
        "parity": {
            "max_abs_diff": max_diff,
            "cosine": cosine,
            "tolerance": FP32_TOLERANCE if quantize is None else None,
            "min_cosine": INT8_MIN_COSINE if quantize else None,
        },
    }
    if labels:
        extra["labels"] = {int(k): str(v) for k, v in labels.items()}
    if config.get("problem_type"):
        extra["problem_type"] = config["problem_type"]
    if task in ("feature-extraction", "sentence-similarity"):
        extra.update(_st_settings(folder) or {"pooling": ["mean"], "normalize": False})
    max_length = extra.get("max_seq_length")
    if max_length is None and task != "image-classification":
        max_pos = config.get("max_position_embeddings") or config.get("n_positions")
        max_length = int(max_pos) if isinstance(max_pos, int) and max_pos < 100_000 else None
    pre = _read_json(staging / "preprocessor_config.json")
    raw_size = pre.get("size")
    size: dict[str, Any] = raw_size if isinstance(raw_size, dict) else {}
    size_bytes = sum(p.stat().st_size for p in staging.glob("model.onnx*"))
    spec = ModelSpec(
        name=name,
        description=f"{task} model converted by modelport",
        model={"source": "model.onnx", "format": "onnx", "version": str(opset)},
        inputs=tensors(model.graph.input),
        outputs=tensors(model.graph.output),
        runtime={
            "gpu": {"memory": f"{max(1, round(size_bytes * 2 / 1e9, 1))}GB", "backend": "auto"}
        },
        preprocessing={
            "tokenizer": "tokenizer.json" if (staging / "tokenizer.json").exists() else None,
            "max_length": max_length,
            "resize": [size["height"], size["width"]] if "height" in size else None,
            "normalize": {"mean": pre["image_mean"], "std": pre["image_std"]}
            if "image_mean" in pre
            else None,
        },
        modelport=extra,
    )
    write_spec(staging, spec)
