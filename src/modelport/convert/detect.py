"""What a model folder holds: modality, task, architecture and framework, with the evidence.

Reads only files: ``config.json`` (``architectures``, ``model_type``, ``id2label``),
sentence-transformers files (``modules.json``, ``1_Pooling/config.json``), the hub's
``pipeline_tag`` when known, preprocessor/feature-extractor configs, file types, and an
ONNX file's inputs and outputs (when the ``onnx`` package is installed). Nothing here
imports torch or transformers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelport.catalog.tasks import TaskCategory, canonical_task, get_task, tasks_for_architecture
from modelport.errors import UnknownTaskError

__all__ = ["Detection", "detect_folder", "detect_model"]

Modality = Literal["text", "vision", "audio", "multimodal", "tabular", "other"]
Framework = Literal[
    "transformers",
    "sentence-transformers",
    "onnx",
    "tensorflow",
    "gguf",
    "pytorch",
    "pytorch-hub",
    "tflite",
    "keras",
    "unknown",
]


@dataclass(frozen=True)
class Detection:
    """What a model is, how sure we are, and why."""

    task: str | None
    modality: Modality
    framework: Framework
    architecture: str | None = None
    model_type: str | None = None
    labels: dict[int, str] | None = None
    confidence: float = 0.0
    evidence: tuple[str, ...] = field(default_factory=tuple)


# model_type → task for configs without a head architecture.
_MODEL_TYPE_TASKS: dict[str, str] = {
    **dict.fromkeys(
        (
            "bert",
            "roberta",
            "xlm-roberta",
            "distilbert",
            "albert",
            "electra",
            "mpnet",
            "deberta",
            "deberta-v2",
            "camembert",
            "modernbert",
            "nomic_bert",
            "new",
            "xlm",
            "ernie",
            "roformer",
            "mobilebert",
            "funnel",
            "luke",
        ),
        "feature-extraction",
    ),
    **dict.fromkeys(
        (
            "gpt2",
            "gptj",
            "gpt_neo",
            "gpt_neox",
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen3",
            "qwen2_moe",
            "qwen3_moe",
            "phi",
            "phi3",
            "gemma",
            "gemma2",
            "gemma3_text",
            "falcon",
            "opt",
            "bloom",
            "codegen",
            "starcoder2",
            "olmo",
            "stablelm",
            "granite",
            "cohere",
            "deepseek_v2",
            "deepseek_v3",
            "gpt_oss",
            "smollm3",
            "mpt",
        ),
        "text-generation",
    ),
    **dict.fromkeys(
        ("t5", "mt5", "bart", "mbart", "pegasus", "marian", "m2m_100"), "text2text-generation"
    ),
    **dict.fromkeys(
        ("whisper", "wav2vec2", "hubert", "speech_to_text"), "automatic-speech-recognition"
    ),
    **dict.fromkeys(
        (
            "vit",
            "deit",
            "beit",
            "convnext",
            "resnet",
            "swin",
            "efficientnet",
            "mobilenet_v2",
            "regnet",
            "dinov2",
            "mobilevit",
            "levit",
        ),
        "image-feature-extraction",
    ),
    **dict.fromkeys(("clip", "siglip", "chinese_clip"), "zero-shot-image-classification"),
    **dict.fromkeys(
        (
            "llava",
            "llava_next",
            "qwen2_vl",
            "qwen2_5_vl",
            "idefics3",
            "mllama",
            "paligemma",
            "gemma3",
            "smolvlm",
        ),
        "image-text-to-text",
    ),
    "detr": "object-detection",
    "yolos": "object-detection",
    "segformer": "image-segmentation",
    "dpt": "depth-estimation",
    "sam": "mask-generation",
    "vits": "text-to-speech",
    "speecht5": "text-to-speech",
    "audio-spectrogram-transformer": "audio-classification",
}

# Tasks a card may name for a model whose head does another, closely related task.
_COMPATIBLE: tuple[frozenset[str], ...] = (
    frozenset({"feature-extraction", "sentence-similarity", "text-retrieval"}),
    frozenset({"text-classification", "text-ranking", "zero-shot-classification"}),
    frozenset({"text-generation", "text2text-generation"}),
    frozenset({"text2text-generation", "translation", "summarization"}),
    frozenset({"image-feature-extraction", "image-classification"}),
    frozenset({"image-text-to-text", "visual-question-answering", "image-to-text"}),
)


def _compatible(a: str, b: str) -> bool:
    return a == b or any(a in group and b in group for group in _COMPATIBLE)


def _modality(task: str | None, hints: Iterable[str] = ()) -> Modality:
    hinted = set(hints)
    if task is not None:
        try:
            category = get_task(task).category
        except UnknownTaskError:
            category = None
        if category is TaskCategory.TEXT:
            return "text"
        if category is TaskCategory.VISION:
            return "vision"
        if category is TaskCategory.AUDIO:
            return "audio"
        if category is TaskCategory.MULTIMODAL:
            return "multimodal"
        if category is TaskCategory.TABULAR:
            return "tabular"
    if "vision" in hinted and "text" in hinted:
        return "multimodal"
    if "audio" in hinted:
        return "audio"
    if "vision" in hinted:
        return "vision"
    if "text" in hinted:
        return "text"
    return "other"


def _labels(config: Mapping[str, Any]) -> dict[int, str] | None:
    raw = config.get("id2label")
    if not isinstance(raw, Mapping) or not raw:
        return None
    try:
        return {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        return None


def _preprocessor_hint(preprocessor: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(modality, evidence) from a preprocessor or feature-extractor config."""
    if not preprocessor:
        return None, None
    kind = str(
        preprocessor.get("image_processor_type")
        or preprocessor.get("feature_extractor_type")
        or preprocessor.get("processor_class")
        or ""
    )
    if (
        "Image" in kind
        or "ViT" in kind
        or "image_mean" in preprocessor
        or "crop_size" in preprocessor
    ):
        return "vision", f"preprocessor {kind or 'image_mean'} works on images"
    if (
        "Audio" in kind
        or "Whisper" in kind
        or "Wav2Vec2" in kind
        or "sampling_rate" in preprocessor
    ):
        return "audio", f"feature extractor {kind or 'sampling_rate'} works on audio"
    return None, None


def detect_model(
    *,
    config: Mapping[str, Any] | None = None,
    files: Iterable[str] = (),
    card_task: str | None = None,
    sentence_transformers: Mapping[str, Any] | list[Any] | None = None,
    preprocessor: Mapping[str, Any] | None = None,
    onnx_io: tuple[list[str], list[str]] | None = None,
) -> Detection:
    """Decide what a model is from its parts; every rule that fired is in ``evidence``."""
    names = list(files)
    evidence: list[str] = []
    card = None
    if card_task:
        try:
            card = canonical_task(card_task)
        except UnknownTaskError:
            evidence.append(f"ignored unknown pipeline_tag {card_task!r}")
    framework: Framework = "unknown"
    if any(n.endswith(".gguf") for n in names):
        framework = "gguf"
    elif any(n.endswith(".onnx") for n in names) and not any(
        n.endswith((".safetensors", ".bin")) for n in names
    ):
        framework = "onnx"
    elif "hubconf.py" in names:
        framework = "pytorch-hub"
        evidence.append("hubconf.py: a PyTorch Hub repository (pick an entry point)")
    elif any(n.endswith("saved_model.pb") for n in names):
        framework = "tensorflow"
        evidence.append("saved_model.pb: a TensorFlow SavedModel")
    elif any(n.endswith(".tflite") for n in names):
        framework = "tflite"
        evidence.append(".tflite: a TensorFlow Lite flatbuffer")
    elif config is not None:
        framework = "transformers"
    elif any(n.endswith(".keras") for n in names):
        framework = "keras"
    elif any(n.endswith((".pt", ".pth")) for n in names):
        framework = "pytorch"

    hint_modality, hint_evidence = _preprocessor_hint(preprocessor)
    if hint_evidence:
        evidence.append(hint_evidence)

    # sentence-transformers: modules.json names the pooling that makes it an embedder.
    if sentence_transformers is not None:
        modules = sentence_transformers if isinstance(sentence_transformers, list) else []
        kinds = [str(m.get("type", "")) for m in modules if isinstance(m, Mapping)]
        evidence.append(
            "modules.json: " + (", ".join(k.rsplit(".", 1)[-1] for k in kinds) or "present")
        )
        st_task = card or "sentence-similarity"
        if card is not None and not _compatible(card, "sentence-similarity"):
            evidence.append(f"pipeline_tag {card} overrides the sentence-transformers default")
        return Detection(
            task=st_task,
            modality=_modality(st_task, [hint_modality or "text"]),
            framework="sentence-transformers",
            architecture=_first_architecture(config),
            model_type=str(config.get("model_type")) if config else None,
            confidence=0.97,
            evidence=tuple(evidence),
        )

    architecture = _first_architecture(config)
    model_type = str(config.get("model_type")) if config and config.get("model_type") else None
    arch_task: str | None = None
    if architecture:
        tasks = tasks_for_architecture(architecture)
        if tasks:
            arch_task = tasks[0]
            evidence.append(f"architecture {architecture} → {arch_task}")
            if len(tasks) > 1 and card in tasks:
                arch_task = card
        else:
            evidence.append(f"architecture {architecture} has no known task")
    # A generic head means what the input is: sequence classification of audio is audio
    # classification, a bare backbone with an image processor makes image features.
    retarget: dict[tuple[str, str | None], str] = {
        ("text-classification", "audio"): "audio-classification",
        ("text-classification", "vision"): "image-classification",
        ("feature-extraction", "vision"): "image-feature-extraction",
    }
    if arch_task is not None and (arch_task, hint_modality) in retarget:
        arch_task = retarget[(arch_task, hint_modality)]
        evidence.append(f"the {hint_modality} preprocessor makes it {arch_task}")
    type_task = _MODEL_TYPE_TASKS.get(model_type or "")
    if type_task and not arch_task:
        evidence.append(f"model_type {model_type} → {type_task}")

    onnx_task, onnx_modality = _from_onnx_io(onnx_io, evidence) if onnx_io else (None, None)

    task = arch_task
    confidence = 0.9 if task else 0.0
    if task is not None and card is not None:
        if _compatible(card, task):
            evidence.append(f"pipeline_tag {card} agrees")
            task, confidence = card, 0.98
        else:
            evidence.append(f"pipeline_tag {card} disagrees with the architecture; kept {task}")
            confidence = 0.75
    elif task is None and card is not None:
        task, confidence = card, 0.85
        evidence.append(f"pipeline_tag {card}")
    if task is None and onnx_task is not None:
        task, confidence = onnx_task, 0.8
    if task is None and type_task is not None:
        task, confidence = type_task, 0.7
    if task is None and framework == "gguf":
        task, confidence = "text-generation", 0.7
        evidence.append("GGUF files hold language models")
    if (
        task == "image-feature-extraction"
        and config is not None
        and _labels(config)
        and len(_labels(config) or {}) > 2
    ):
        task = "image-classification"
        evidence.append("id2label names classes: image classification")

    labels = _labels(config) if config else None
    if labels and task in (
        "text-classification",
        "token-classification",
        "image-classification",
        "audio-classification",
    ):
        evidence.append(f"{len(labels)} labels")
    hints = [m for m in (hint_modality, onnx_modality) if m]
    if task is None and not hints and config is None and not names:
        evidence.append("nothing to go on")
    modality = _modality(task, hints or (["text"] if model_type in _TEXT_TYPES else []))
    return Detection(
        task=task,
        modality=modality,
        framework=framework,
        architecture=architecture,
        model_type=model_type,
        labels=labels,
        confidence=confidence if task else 0.0,
        evidence=tuple(evidence),
    )


_TEXT_TYPES = {k for k, v in _MODEL_TYPE_TASKS.items() if get_task(v).category is TaskCategory.TEXT}


def _first_architecture(config: Mapping[str, Any] | None) -> str | None:
    if not config:
        return None
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    return None


def _from_onnx_io(
    onnx_io: tuple[list[str], list[str]], evidence: list[str]
) -> tuple[str | None, str | None]:
    inputs, outputs = (set(onnx_io[0]), set(onnx_io[1]))
    modality = None
    if "input_ids" in inputs:
        modality = "text"
    if "pixel_values" in inputs or any(i in inputs for i in ("images", "image", "data", "input")):
        modality = "vision" if modality is None else "multimodal"
    if "input_features" in inputs or "input_values" in inputs:
        modality = "audio"
    task = None
    if any(i.startswith("past_key_values") for i in inputs) or "present.0.key" in outputs:
        task = "text-generation"
    elif {"start_logits", "end_logits"} <= outputs:
        task = "question-answering"
    elif "last_hidden_state" in outputs or "sentence_embedding" in outputs:
        task = "feature-extraction" if modality != "vision" else "image-feature-extraction"
    elif "logits" in outputs and modality == "vision":
        task = "image-classification"
    elif "logits" in outputs and modality == "audio":
        task = (
            "automatic-speech-recognition" if "input_values" in inputs else "audio-classification"
        )
    elif modality == "vision" and len(outputs) == 1:
        task = "image-classification"
    evidence.append(
        f"ONNX inputs {sorted(inputs)} and outputs {sorted(outputs)}"
        + (f" → {task}" if task else "")
    )
    return task, modality


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _onnx_io(path: Path) -> tuple[list[str], list[str]] | None:
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # a broken file tells us nothing
        return None
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    return inputs, [o.name for o in model.graph.output]


def detect_folder(folder: str | Path, *, card_task: str | None = None) -> Detection:
    """Detect what the model in a folder is (a store folder, or any local model folder)."""
    root = Path(folder)
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    config = _read_json(root / "config.json")
    st = _read_json(root / "modules.json") if (root / "modules.json").exists() else None
    preprocessor = _read_json(root / "preprocessor_config.json")
    onnx_files = sorted(f for f in files if f.endswith(".onnx"))
    onnx_io = _onnx_io(root / onnx_files[0]) if onnx_files else None
    found = detect_model(
        config=config if isinstance(config, dict) else None,
        files=files,
        card_task=card_task,
        sentence_transformers=st if isinstance(st, list) else None,
        preprocessor=preprocessor if isinstance(preprocessor, dict) else None,
        onnx_io=onnx_io,
    )
    if found.framework == "pytorch-hub":
        from dataclasses import replace

        from modelport.errors import IntegrityError
        from modelport.hubconf import list_entrypoints

        try:
            entries, _ = list_entrypoints((root / "hubconf.py").read_text(encoding="utf-8"))
        except (IntegrityError, OSError, UnicodeDecodeError):
            return found
        names = ", ".join(e.name for e in entries) or "none"
        found = replace(found, evidence=(*found.evidence, f"entry points: {names}"))
    return found
