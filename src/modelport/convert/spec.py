"""The ``modelport.yml`` of a converted artifact: I/O, preprocessing, labels, checks."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from modelport.runtime.spec import read_json

__all__ = ["package_version", "read_yaml", "write_conversion_spec"]


def package_version(package: str) -> str:
    """The installed version of a package, or ``none``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def read_yaml(path: Path) -> dict[str, Any]:
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
            config = read_json(path / "config.json")
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
    bert = read_json(folder / "sentence_bert_config.json")
    if bert.get("max_seq_length"):
        settings["max_seq_length"] = int(bert["max_seq_length"])
    if _matryoshka(folder):
        settings["matryoshka"] = True
    return settings


def _matryoshka(folder: Path) -> bool:
    """Whether the model card says the model was trained to be shortened (Matryoshka):
    the ``matryoshka`` tag of its front matter, or the MatryoshkaLoss it was trained with."""
    import re

    try:
        card = (folder / "README.md").read_text(errors="replace")[:500_000]
    except OSError:
        return False
    front = re.match(r"---\n(.*?)\n---", card, re.S)
    tags = re.findall(r"^\s*-\s*([\w.-]+)\s*$", front.group(1), re.M) if front else []
    return "matryoshka" in {t.lower() for t in tags} or "MatryoshkaLoss" in card


def write_conversion_spec(
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
    *,
    tolerance: float,
    min_cosine: float,
    framework: str = "transformers",
    entrypoint: str | None = None,
) -> None:
    """Write ``modelport.yml`` for the artifact in ``staging``, recording how it was checked."""
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

    config = read_json(folder / "config.json")
    labels = (
        config.get("id2label")
        if task in ("text-classification", "token-classification", "image-classification")
        else None
    )
    extra: dict[str, Any] = {
        "task": task,
        "source": {"folder": folder.name, "digest": source},
        "framework": framework,
        "exporter": {
            p: package_version(p)
            for p in {
                "transformers": ("optimum-onnx", "transformers", "torch", "onnx"),
                "pytorch-hub": ("torch", "onnx"),
                "tensorflow": ("tensorflow", "tf2onnx", "onnx"),
            }.get(framework, ("onnx",))
        },
        "opset": opset,
        "options": {"optimize": optimize, "quantize": quantize},
        "parity": {
            "max_abs_diff": max_diff,
            "cosine": cosine,
            "tolerance": tolerance if quantize is None else None,
            "min_cosine": min_cosine if quantize else None,
        },
    }
    if entrypoint:
        extra["entrypoint"] = entrypoint
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
    pre = read_json(staging / "preprocessor_config.json")
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
