"""Export a model folder to ONNX, check it against PyTorch, optimize and quantize it.

The exporter made for the job does the work: ``optimum-onnx``'s ``main_export`` with the
task given explicitly, falling back to ``torch.onnx.export`` for encoders. Every artifact
is compared with the PyTorch model on generated inputs; one over tolerance is removed and
the conversion fails with the numbers. Artifacts are cached by source digest, exporter
versions, opset and options, and become visible by one atomic rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.convert.detect import detect_folder
from modelport.convert.parity import FP32_TOLERANCE, INT8_MIN_COSINE, auto_class, parity
from modelport.convert.sandbox import contained
from modelport.convert.spec import package_version, read_yaml, write_conversion_spec
from modelport.errors import ConversionError, InvalidValueError, MissingExtraError
from modelport.runtime.spec import read_json
from modelport.store.layout import tree_digest  # one content key with the store

__all__ = [
    "CONVERTIBLE_TASKS",
    "ConversionError",
    "ConversionResult",
    "conversion_key",
    "convert_folder",
    "source_digest",
    "torch_hub_dir",
]

DEFAULT_OPSET = 18
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


def _require_convert() -> None:
    for module in ("torch", "transformers", "onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError("convert", feature="Converting models to ONNX") from None


#: Folders a copy of a model tree may carry that are not the model: git's, and the
#: metadata ``huggingface_hub`` keeps in a ``local_dir`` download.
_NOT_MODEL = (".git", ".cache")


def source_digest(folder: Path, *, cache_dir: Path | None = None) -> str:
    """The content key of a folder (``tree_digest`` of its files).

    With ``cache_dir``, each file's sha256 is remembered there by size, modification time
    and inode, so a folder that did not change is not read again.
    """
    folder = folder.resolve()
    known: dict[str, list[Any]] = {}
    cache = None
    if cache_dir is not None:
        name = hashlib.sha256(str(folder).encode()).hexdigest()[:32]
        cache = cache_dir / f"{name}.json"
        try:
            loaded = json.loads(cache.read_text())
            known = loaded.get("files", {}) if loaded.get("folder") == str(folder) else {}
        except (OSError, ValueError, AttributeError):
            known = {}
    files: dict[str, list[Any]] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if relative.parts[0] in _NOT_MODEL or not path.is_file():
            continue
        stat = path.stat()
        key = relative.as_posix()
        mark = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        seen = known.get(key)
        if seen is not None and seen[:3] == mark:
            files[key] = seen
            continue
        file_hash = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                file_hash.update(chunk)
        files[key] = [*mark, file_hash.hexdigest()]
    if cache is not None and files != known:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps({"folder": str(folder), "files": files}))
            os.replace(tmp, cache)
    return tree_digest((path, entry[3]) for path, entry in files.items())


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
            p: package_version(p)
            for p in ("optimum-onnx", "transformers", "torch", "onnx", "onnxruntime")
        },
        # 4: one content key for store and folder sources; parity of the kept artifact.
        "format": 4,
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
    entrypoint: str | None = None,
    entry_kwargs: Mapping[str, Any] | None = None,
    input_shapes: Sequence[str] = (),
    before_code_runs: Callable[[], None] | None = None,
    debug_log: Path | None = None,
) -> ConversionResult:
    """Convert (or find in the cache) the model in ``folder``; returns where it lives.

    ``before_code_runs`` is called just before the source's own code would run (a
    PyTorch Hub ``hubconf.py``); it raises to refuse. What the exporters and ONNX
    Runtime's tools print goes to ``debug_log``, and nothing lands in the working
    directory.
    """
    if quantize not in (None, "int8"):
        raise InvalidValueError(f"Unknown quantization {quantize!r}.", hint="Use --quantize int8.")
    # Absolute paths: the tools run with a scratch working directory.
    folder, out_root = folder.resolve(), out_root.resolve()
    with contained(debug_log):
        return _convert(
            folder,
            out_root=out_root,
            task=task,
            card_task=card_task,
            source=source,
            name=name,
            opset=opset,
            optimize=optimize,
            quantize=quantize,
            entrypoint=entrypoint,
            entry_kwargs=entry_kwargs,
            input_shapes=input_shapes,
            before_code_runs=before_code_runs,
        )


def _convert(
    folder: Path,
    *,
    out_root: Path,
    task: str | None,
    card_task: str | None,
    source: str | None,
    name: str | None,
    opset: int,
    optimize: bool,
    quantize: str | None,
    entrypoint: str | None,
    entry_kwargs: Mapping[str, Any] | None,
    input_shapes: Sequence[str],
    before_code_runs: Callable[[], None] | None,
) -> ConversionResult:
    import time

    framework = (
        "pytorch-hub"
        if (folder / "hubconf.py").exists()
        else "tensorflow"
        if (folder / "saved_model.pb").exists()
        else None
    )
    if framework is not None:
        return _convert_framework(
            folder,
            framework,
            out_root=out_root,
            source=source,
            name=name,
            opset=opset,
            optimize=optimize,
            quantize=quantize,
            entrypoint=entrypoint,
            entry_kwargs=dict(entry_kwargs or {}),
            input_shapes=input_shapes,
            before_code_runs=before_code_runs,
        )
    if task is None:
        detected = detect_folder(folder, card_task=card_task)
        task = detected.task
    supported = ", ".join(sorted(set(CONVERTIBLE_TASKS)))
    ready_onnx = any(folder.glob("*.onnx")) and not (folder / "config.json").exists()
    if ready_onnx and (task is None or task not in CONVERTIBLE_TASKS):
        # A ready ONNX graph needs no exporter: without a pipeline of its own it runs as
        # arrays in, arrays out.
        from modelport.runtime.pipelines import SUPPORTED_TASKS

        task = task if task in SUPPORTED_TASKS else "tensors"
    elif task is None:
        raise InvalidValueError(
            f"Cannot tell what model {folder} holds: no config.json, sentence-transformers "
            "files or ONNX model say it.",
            hint=f"Pass --task if you know it; supported: {supported}.",
        )
    if task not in CONVERTIBLE_TASKS and not ready_onnx:
        raise InvalidValueError(
            f"modelport cannot convert {task} models to ONNX yet ({folder.name}).",
            hint=f"Supported tasks: {supported}.",
        )
    # The content key goes into the spec too: the store tells whose artifact it is.
    source = source or source_digest(folder)
    key = conversion_key(
        source,
        task=task,
        opset=opset,
        optimize=optimize,
        quantize=quantize,
    )
    target = out_root / key
    cached = _cached(target, key, opset, optimize, quantize)
    if cached is not None:
        return cached
    started = time.perf_counter()
    onnx_files = sorted(folder.glob("*.onnx"))
    if onnx_files and not (folder / "config.json").exists():
        # Already ONNX (a zoo model): no export and no torch; inputs and outputs come
        # from the model itself, and the original graph is the reference.
        max_diff, cosine, graph_opset = _adopt(
            folder,
            onnx_files[0],
            out_root,
            key,
            task,
            name or folder.name,
            opset,
            source,
            optimize=optimize,
            quantize=quantize,
        )
        return ConversionResult(
            out_root / key,
            task,
            key,
            max_diff,
            cosine,
            graph_opset,
            optimize,
            quantize,
            time.perf_counter() - started,
            False,
        )
    _require_convert()
    with _staging(out_root, key) as staging:
        _export(folder, staging, task, opset)
        _ensure_tokenizer(folder, staging, task)
        for name_ in _ST_FILES:
            if (folder / name_).exists():
                shutil.copy2(folder / name_, staging / name_)
        for sub in folder.iterdir():
            if sub.is_dir() and sub.name[:1].isdigit() and "_" in sub.name:
                shutil.copytree(sub, staging / sub.name, dirs_exist_ok=True)
        if optimize:
            _optimize(staging, read_json(folder / "config.json").get("model_type"))
        if quantize == "int8":
            _quantize(staging, task)
        max_diff, cosine = parity(folder, staging, task)
        _check_parity(max_diff, cosine, quantize, name=folder.name, against="PyTorch")
        write_conversion_spec(
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
            tolerance=FP32_TOLERANCE,
            min_cosine=INT8_MIN_COSINE,
        )
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


@contextlib.contextmanager
def _staging(out_root: Path, key: str) -> Iterator[Path]:
    """A scratch folder that becomes ``out_root/key`` if the block succeeds, else vanishes."""
    staging = out_root / f".{key}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        yield staging
        try:
            os.replace(staging, out_root / key)
        except OSError:
            if not (out_root / key / "modelport.yml").exists():  # not another process's copy
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _cached(
    target: Path, key: str, opset: int, optimize: bool, quantize: str | None
) -> ConversionResult | None:
    """The artifact already converted under ``key``, as its spec records it, or None."""
    if not (target / "modelport.yml").exists():
        return None
    extra = read_yaml(target / "modelport.yml").get("modelport", {})
    checks = extra.get("parity", {})
    return ConversionResult(
        target,
        str(extra.get("task")),
        key,
        float(checks.get("max_abs_diff", 0.0)),
        float(checks.get("cosine", 1.0)),
        opset,
        optimize,
        quantize,
        0.0,
        True,
    )


def _check_parity(
    max_diff: float, cosine: float, quantize: str | None, *, name: str, against: str
) -> None:
    """Refuse the artifact that will be kept if it strays from the original."""
    if quantize is None and max_diff > FP32_TOLERANCE:
        raise ConversionError(
            f"The ONNX model of {name} differs from {against} by {max_diff:.2e} "
            f"(tolerance {FP32_TOLERANCE:.0e}); the artifact was removed.",
            hint="Try another --opset, or without --optimize.",
        )
    if quantize is not None and cosine < INT8_MIN_COSINE:
        raise ConversionError(
            f"The int8 model of {name} agrees with {against} only to cosine {cosine:.4f} "
            f"(needs {INT8_MIN_COSINE}); the artifact was removed.",
            hint="Use the float32 conversion for this model.",
        )


def _convert_framework(
    folder: Path,
    framework: str,
    *,
    out_root: Path,
    source: str | None,
    name: str | None,
    opset: int,
    optimize: bool,
    quantize: str | None,
    entrypoint: str | None,
    entry_kwargs: dict[str, Any],
    input_shapes: Sequence[str],
    before_code_runs: Callable[[], None] | None,
) -> ConversionResult:
    """Export a PyTorch Hub entry point or a TensorFlow SavedModel, parity-checked.

    The exporter returns the original's outputs on generated inputs; they are compared
    with the artifact that is kept, after --optimize and --quantize.
    """
    import time

    from modelport.convert.parity import compare_artifact

    if framework == "pytorch-hub" and not entrypoint:
        raise InvalidValueError(
            f"{name or folder.name} is a PyTorch Hub repository: say which entry point to export.",
            hint="Use torch:owner/repo/ENTRYPOINT; list them with: modelport show torch:owner/repo",
        )
    from modelport.convert.torchhub import parse_input_shape

    shapes = [parse_input_shape(text) for text in input_shapes]
    variant = json.dumps(
        {"entrypoint": entrypoint, "kwargs": entry_kwargs, "shapes": list(input_shapes)},
        sort_keys=True,
        default=str,
    )
    digest = source or source_digest(folder)
    key = conversion_key(
        digest,
        task=f"{framework}:{variant}",
        opset=opset,
        optimize=optimize,
        quantize=quantize,
    )
    target = out_root / key
    cached = _cached(target, key, opset, optimize, quantize)
    if cached is not None:
        return cached
    if framework == "pytorch-hub" and before_code_runs is not None:
        before_code_runs()
    started = time.perf_counter()
    label = "PyTorch" if framework == "pytorch-hub" else "TensorFlow"
    with _staging(out_root, key) as staging:
        if framework == "pytorch-hub":
            try:
                import torch  # noqa: F401
            except ImportError:
                raise MissingExtraError("convert", feature="Exporting PyTorch Hub models") from None
            from modelport.convert.torchhub import export_torchhub

            assert entrypoint is not None
            task, reference = export_torchhub(
                folder,
                staging,
                entrypoint=entrypoint,
                kwargs=entry_kwargs,
                input_shapes=shapes,
                opset=opset,
                weights_dir=torch_hub_dir(out_root, digest),
            )
        else:
            from modelport.convert.tensorflow import export_saved_model

            task, reference = export_saved_model(folder, staging, input_shapes=shapes, opset=opset)
        if task == "image-classification":
            (staging / "preprocessor_config.json").write_text(
                json.dumps(_image_preprocessor(staging / "model.onnx"))
            )
        if optimize:
            _optimize(staging, None)
        if quantize == "int8":
            _quantize(staging)
        max_diff, cosine = compare_artifact(staging / "model.onnx", reference)
        _check_parity(max_diff, cosine, quantize, name=name or folder.name, against=label)
        write_conversion_spec(
            staging,
            folder,
            task,
            name or folder.name,
            opset,
            optimize,
            quantize,
            max_diff,
            cosine,
            digest,
            tolerance=FP32_TOLERANCE,
            min_cosine=INT8_MIN_COSINE,
            framework=framework,
            entrypoint=entrypoint,
        )
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


def torch_hub_dir(out_root: Path, digest: str) -> Path:
    """Where the weights a PyTorch Hub source downloads are kept: beside its artifacts,
    one folder per source, so removing the source removes them."""
    return out_root.parent / "torch-hub" / digest[:32]


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


def _image_preprocessor(model: Path) -> dict[str, Any]:
    """Preprocessing for an exported image classifier, from its input's layout and size.

    PyTorch models (NCHW) get ImageNet's normalization, resized straight to a fixed size
    other than 224; TensorFlow ones (NHWC) get pixels scaled to [0, 1], TF Hub's convention.
    """
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    channels_last = len(dims) == 4 and dims[3] == 3 and dims[1] != 3
    height, width = (dims[1], dims[2]) if channels_last else (dims[2], dims[3])
    if channels_last:
        return {
            "do_resize": True,
            "size": {"height": height or 224, "width": width or 224},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": False,
            "resample": 2,
            "data_format": "channels_last",
        }
    if not height or not width or (height, width) == (224, 224):
        return IMAGENET_PREPROCESSOR
    config = {k: v for k, v in IMAGENET_PREPROCESSOR.items() if k != "crop_pct"}
    config["size"] = {"height": height, "width": width}
    return config


def _adopt(
    folder: Path,
    model: Path,
    out_root: Path,
    key: str,
    task: str,
    name: str,
    opset: int,
    source: str | None,
    *,
    optimize: bool = False,
    quantize: str | None = None,
) -> tuple[float, float, int]:
    """Give a ready ONNX model its spec (and default preprocessing) without exporting it.

    With --optimize or --quantize the kept graph is compared with the original one on
    generated inputs; returns max |diff|, cosine and the graph's opset.
    """
    import onnx

    from modelport.convert.parity import compare_artifact, onnx_reference

    with _staging(out_root, key) as staging:
        rewritten = optimize or quantize is not None
        try:
            if rewritten:  # rewritten below: the store's read-only blob must not be
                raise OSError
            os.link(model, staging / "model.onnx")
        except OSError:
            shutil.copyfile(model, staging / "model.onnx")
        for extra in folder.iterdir():
            if extra.is_file() and extra.name != model.name:
                shutil.copyfile(extra, staging / extra.name)
        named = "additional_chat_templates"
        if (folder / named).is_dir():
            shutil.copytree(folder / named, staging / named)
        if task == "image-classification" and not (staging / "preprocessor_config.json").exists():
            (staging / "preprocessor_config.json").write_text(json.dumps(IMAGENET_PREPROCESSOR))
        graph_opset = max(
            (
                o.version
                for o in onnx.load(str(model), load_external_data=False).opset_import
                if o.domain in ("", "ai.onnx")
            ),
            default=opset,
        )
        max_diff, cosine = 0.0, 1.0
        if rewritten:
            reference = onnx_reference(model)
            if optimize:
                _optimize(staging, None)
            if quantize == "int8":
                _quantize(staging, task)
            max_diff, cosine = compare_artifact(staging / "model.onnx", reference)
            _check_parity(max_diff, cosine, quantize, name=name, against="the original ONNX model")
        write_conversion_spec(
            staging,
            folder,
            task,
            name,
            graph_opset,
            optimize,
            quantize,
            max_diff,
            cosine,
            source,
            tolerance=FP32_TOLERANCE,
            min_cosine=INT8_MIN_COSINE,
            framework="onnx",
        )
    return max_diff, cosine, graph_opset


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


def _torch_export(folder: Path, out: Path, task: str, opset: int) -> None:
    """Plain ``torch.onnx.export`` of an encoder, with dynamic batch and sequence axes."""
    import torch

    model = auto_class(task).from_pretrained(str(folder)).eval()
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


#: What a runtime reads beside a text model's graph: the tokenizer and its special tokens,
#: the chat templates (transformers 4.5x saves them as files of their own) and, for decoders, the
#: generation config (its end-of-sequence ids, often several for chat models).
_TOKENIZER_FILES = (
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "chat_template.jinja",
    "generation_config.json",
)


def _ensure_tokenizer(folder: Path, out: Path, task: str) -> None:
    """Make sure a ``tokenizer.json`` (with its configs and chat template) and the generation
    config sit beside the artifact."""
    if task == "image-classification":
        if (folder / "preprocessor_config.json").exists() and not (
            out / "preprocessor_config.json"
        ).exists():
            shutil.copy2(folder / "preprocessor_config.json", out / "preprocessor_config.json")
        return
    for name in _TOKENIZER_FILES:
        if (folder / name).exists() and not (out / name).exists():
            shutil.copy2(folder / name, out / name)
    named = "additional_chat_templates"
    if (folder / named).is_dir() and not (out / named).exists():
        shutil.copytree(folder / named, out / named)
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


def _optimize(staging: Path, model_type: str | None) -> None:
    """Rewrite ``staging/model.onnx`` optimized: transformer fusions for BERT- and GPT-2-like
    models, else ONNX Runtime's basic graph optimizations (constant folding, redundant
    nodes), which are the same on every machine and provider."""
    path = staging / "model.onnx"
    tmp = staging / "model.optimized.onnx"
    if model_type in ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma"):
        return  # the bert/gpt2 fusions do not apply; ORT's own graph optimizations still run
    if model_type is not None:
        from onnxruntime.transformers.optimizer import optimize_model

        kind = {"gpt2": "gpt2", "bart": "bart", "t5": "t5"}.get(model_type, "bert")
        optimized = optimize_model(str(path), model_type=kind, num_heads=0, hidden_size=0)
        optimized.save_model_to_file(str(tmp))
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(tmp)
        options.log_severity_level = 3
        ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    os.replace(tmp, path)


#: Text encoders, whose MatMul inputs SmoothQuant can calibrate on text before int8.
_SMOOTHED_TASKS = (
    "feature-extraction",
    "sentence-similarity",
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
)


def _quantize(staging: Path, task: str | None = None) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = staging / "model.onnx"
    keep_float: list[str] = []
    if task in _SMOOTHED_TASKS and (staging / "tokenizer.json").exists():
        from modelport.convert.smooth import float_matmuls, smooth_model

        keep_float = float_matmuls(smooth_model(path, staging))
    tmp = staging / "model.int8.onnx"
    quantize_dynamic(
        str(path),
        str(tmp),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=keep_float,
        extra_options={"DefaultTensorType": 1},  # float, for outputs of fused ops
    )
    os.replace(tmp, path)
    for extra in staging.glob("model.onnx_data*"):
        extra.unlink()
