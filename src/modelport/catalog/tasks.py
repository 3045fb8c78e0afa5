"""Pipeline tasks (Hugging Face names), their categories, aliases, and architecture → task."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from modelport.errors import UnknownTaskError

__all__ = [
    "TASKS",
    "Task",
    "TaskCategory",
    "canonical_task",
    "get_task",
    "is_known_task",
    "tasks_for_architecture",
]


class TaskCategory(StrEnum):
    """The kind of data a task works on."""

    TEXT = "text"
    VISION = "vision"
    AUDIO = "audio"
    MULTIMODAL = "multimodal"
    TABULAR = "tabular"
    OTHER = "other"


@dataclass(frozen=True)
class Task:
    """One pipeline task."""

    name: str
    category: TaskCategory
    description: str
    aliases: tuple[str, ...] = ()


_T, _V, _A, _M, _TB, _O = (
    TaskCategory.TEXT,
    TaskCategory.VISION,
    TaskCategory.AUDIO,
    TaskCategory.MULTIMODAL,
    TaskCategory.TABULAR,
    TaskCategory.OTHER,
)

TASKS: tuple[Task, ...] = (
    # text
    Task(
        "text-generation",
        _T,
        "Generate text that continues a prompt or answers a chat.",
        (
            "causal-lm",
            "causal_lm",
            "clm",
            "text-gen",
            "chat",
            "completion",
            "llm",
            "generation",
            # The Hub's retired pipeline tag, still on many model cards.
            "conversational",
        ),
    ),
    Task(
        "text2text-generation",
        _T,
        "Generate text from text with an encoder-decoder model.",
        ("seq2seq", "seq2seq-lm", "seq2seq_lm", "text2text"),
    ),
    Task(
        "text-classification",
        _T,
        "Assign labels to a text (sentiment, topic, NLI).",
        ("sequence-classification", "sentiment-analysis", "sentiment", "classification"),
    ),
    Task(
        "token-classification",
        _T,
        "Label each token (named entities, part of speech).",
        ("ner", "named-entity-recognition", "pos"),
    ),
    Task(
        "question-answering", _T, "Extract an answer span from a context.", ("qa", "extractive-qa")
    ),
    Task("table-question-answering", _T, "Answer a question about a table.", ("table-qa",)),
    Task(
        "zero-shot-classification",
        _T,
        "Classify a text into labels given at run time.",
        ("zero-shot",),
    ),
    Task("translation", _T, "Translate text from one language to another.", ("mt",)),
    Task("summarization", _T, "Summarize a long text.", ("summary", "summarize")),
    Task(
        "feature-extraction",
        _T,
        "Turn an input into a vector (embeddings).",
        ("embedding", "embeddings", "embed", "text-embedding", "encoder"),
    ),
    Task("fill-mask", _T, "Predict masked tokens.", ("masked-lm", "masked_lm", "mlm")),
    Task(
        "sentence-similarity",
        _T,
        "Score how similar sentences are.",
        ("similarity", "semantic-similarity", "sentence-embedding"),
    ),
    Task("text-ranking", _T, "Rank passages by relevance to a query.", ("rerank", "reranking")),
    Task("multiple-choice", _T, "Choose the best of several answers.", ()),
    Task("text-retrieval", _T, "Retrieve documents for a query.", ("retrieval",)),
    # vision
    Task("image-classification", _V, "Assign labels to an image.", ("image-cls",)),
    Task("object-detection", _V, "Find and label objects with boxes.", ("detection",)),
    Task("image-segmentation", _V, "Label every pixel of an image.", ("segmentation",)),
    Task("depth-estimation", _V, "Predict depth for every pixel.", ("depth",)),
    Task("text-to-image", _V, "Generate an image from text.", ("image-generation", "t2i")),
    Task("image-to-image", _V, "Transform an image (super-resolution, editing).", ()),
    Task(
        "unconditional-image-generation",
        _V,
        "Generate images from noise.",
        (),
    ),
    Task("video-classification", _V, "Assign labels to a video.", ()),
    Task(
        "zero-shot-image-classification",
        _V,
        "Classify an image into labels given at run time.",
        ("clip",),
    ),
    Task("mask-generation", _V, "Generate segmentation masks for an image.", ()),
    Task("zero-shot-object-detection", _V, "Detect objects named at run time.", ()),
    Task("image-feature-extraction", _V, "Turn an image into a vector.", ("image-embedding",)),
    Task("keypoint-detection", _V, "Locate keypoints in an image.", ()),
    Task("text-to-video", _V, "Generate a video from text.", ("video-generation",)),
    Task("image-to-video", _V, "Generate a video from an image.", ()),
    Task("video-to-video", _V, "Transform a video.", ()),
    Task("text-to-3d", _V, "Generate a 3D object from text.", ()),
    Task("image-to-3d", _V, "Generate a 3D object from an image.", ()),
    # audio
    Task(
        "automatic-speech-recognition",
        _A,
        "Transcribe speech to text.",
        ("asr", "speech-recognition", "speech-to-text", "transcription", "stt"),
    ),
    Task("text-to-speech", _A, "Speak a text aloud.", ("tts", "speech-synthesis")),
    Task("text-to-audio", _A, "Generate audio or music from text.", ("music-generation",)),
    Task("audio-classification", _A, "Assign labels to audio.", ()),
    Task(
        "zero-shot-audio-classification",
        _A,
        "Assign labels named at run time to audio (CLAP).",
        ("zero-shot-audio",),
    ),
    Task("audio-to-audio", _A, "Transform audio (enhancement, separation).", ()),
    Task("voice-activity-detection", _A, "Find where speech occurs.", ("vad",)),
    # multimodal
    Task(
        "image-to-text",
        _M,
        "Describe an image in text.",
        ("image-captioning", "captioning", "ocr"),
    ),
    Task(
        "image-text-to-text",
        _M,
        "Answer or chat about images and text.",
        ("vlm", "vision-language", "multimodal-chat"),
    ),
    Task("visual-question-answering", _M, "Answer a question about an image.", ("vqa",)),
    Task(
        "document-question-answering",
        _M,
        "Answer a question about a document image.",
        ("docvqa",),
    ),
    Task("video-text-to-text", _M, "Answer or chat about videos and text.", ()),
    Task("audio-text-to-text", _M, "Answer or chat about audio and text.", ()),
    Task("any-to-any", _M, "Take and produce any mix of modalities.", ("omni",)),
    Task("visual-document-retrieval", _M, "Retrieve document images for a query.", ()),
    # tabular and other
    Task("tabular-classification", _TB, "Classify rows of a table.", ()),
    Task("tabular-regression", _TB, "Predict a number for rows of a table.", ()),
    Task("time-series-forecasting", _TB, "Forecast future values of a series.", ("forecasting",)),
    Task("reinforcement-learning", _O, "Act in an environment.", ("rl",)),
    Task("robotics", _O, "Control a robot.", ()),
    Task("graph-ml", _O, "Learn on graphs.", ()),
    Task("moderation", _T, "Flag unsafe or policy-violating content.", ("content-moderation",)),
)

_BY_NAME: dict[str, Task] = {t.name: t for t in TASKS}
_ALIASES: dict[str, str] = {}
for _task in TASKS:
    _ALIASES[_task.name] = _task.name
    _ALIASES[_task.name.replace("-", "_")] = _task.name
    for _alias in _task.aliases:
        _ALIASES[_alias] = _task.name
        _ALIASES[_alias.replace("_", "-")] = _task.name


def _normalize(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def is_known_task(name: str) -> bool:
    """Whether ``name`` is a task name or one of its aliases."""
    return _normalize(name) in _ALIASES


def canonical_task(name: str) -> str:
    """The canonical task name for a task name or alias; raise ``UnknownTaskError``."""
    key = _normalize(name)
    if key in _ALIASES:
        return _ALIASES[key]
    from rapidfuzz import process

    close = process.extract(key, list(_ALIASES), limit=3, score_cutoff=70)
    raise UnknownTaskError(name, suggestions=list(dict.fromkeys(_ALIASES[c[0]] for c in close)))


def get_task(name: str) -> Task:
    """The ``Task`` for a task name or alias."""
    return _BY_NAME[canonical_task(name)]


# Whole architecture names whose suffix alone is not enough.
_ARCHITECTURE_TASKS: dict[str, tuple[str, ...]] = {
    "WhisperForConditionalGeneration": ("automatic-speech-recognition",),
    "Speech2TextForConditionalGeneration": ("automatic-speech-recognition",),
    "SeamlessM4Tv2ForConditionalGeneration": ("translation", "automatic-speech-recognition"),
    "T5ForConditionalGeneration": ("text2text-generation", "translation", "summarization"),
    "MT5ForConditionalGeneration": ("text2text-generation", "translation"),
    "BartForConditionalGeneration": ("summarization", "text2text-generation"),
    "PegasusForConditionalGeneration": ("summarization",),
    "MarianMTModel": ("translation",),
    "M2M100ForConditionalGeneration": ("translation",),
    "NllbMoeForConditionalGeneration": ("translation",),
    "BlipForConditionalGeneration": ("image-to-text",),
    "Blip2ForConditionalGeneration": ("image-to-text", "visual-question-answering"),
    "VisionEncoderDecoderModel": ("image-to-text",),
    "LlavaForConditionalGeneration": ("image-text-to-text",),
    "LlavaNextForConditionalGeneration": ("image-text-to-text",),
    "Qwen2VLForConditionalGeneration": ("image-text-to-text",),
    "Qwen2_5_VLForConditionalGeneration": ("image-text-to-text",),
    "PaliGemmaForConditionalGeneration": ("image-text-to-text",),
    "Gemma3ForConditionalGeneration": ("image-text-to-text",),
    "Idefics3ForConditionalGeneration": ("image-text-to-text",),
    "MllamaForConditionalGeneration": ("image-text-to-text",),
    "Florence2ForConditionalGeneration": ("image-text-to-text",),
    "Qwen2AudioForConditionalGeneration": ("audio-text-to-text",),
    "CLIPModel": ("zero-shot-image-classification", "feature-extraction"),
    "SiglipModel": ("zero-shot-image-classification", "feature-extraction"),
    "ClapModel": ("zero-shot-audio-classification", "feature-extraction"),
    # Vision-language models whose "question answering" is about an image.
    "BlipForQuestionAnswering": ("visual-question-answering",),
    "ViltForQuestionAnswering": ("visual-question-answering",),
    "LxmertForQuestionAnswering": ("visual-question-answering",),
    "VisualBertForQuestionAnswering": ("visual-question-answering",),
    "SpeechT5ForTextToSpeech": ("text-to-speech",),
    "VitsModel": ("text-to-speech",),
    "MusicgenForConditionalGeneration": ("text-to-audio",),
    "DPTForDepthEstimation": ("depth-estimation",),
    "SamModel": ("mask-generation",),
    "OwlViTForObjectDetection": ("zero-shot-object-detection",),
    "Owlv2ForObjectDetection": ("zero-shot-object-detection",),
    "GroundingDinoForObjectDetection": ("zero-shot-object-detection",),
    "TapasForQuestionAnswering": ("table-question-answering",),
    "LayoutLMv3ForQuestionAnswering": ("document-question-answering",),
    "DonutSwinModel": ("document-question-answering",),
}

# Suffixes of transformers class names, most specific first.
_SUFFIX_TASKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ForCausalLM", ("text-generation",)),
    ("LMHeadModel", ("text-generation",)),
    ("ForMaskedLM", ("fill-mask",)),
    ("ForPreTraining", ("fill-mask",)),
    ("ForSequenceClassification", ("text-classification",)),
    ("ForTokenClassification", ("token-classification",)),
    ("ForQuestionAnswering", ("question-answering",)),
    ("ForMultipleChoice", ("multiple-choice",)),
    ("ForNextSentencePrediction", ("text-classification",)),
    ("ForImageClassificationWithTeacher", ("image-classification",)),
    ("ForImageClassification", ("image-classification",)),
    ("ForObjectDetection", ("object-detection",)),
    ("ForSemanticSegmentation", ("image-segmentation",)),
    ("ForInstanceSegmentation", ("image-segmentation",)),
    ("ForUniversalSegmentation", ("image-segmentation",)),
    ("ForImageSegmentation", ("image-segmentation",)),
    ("ForDepthEstimation", ("depth-estimation",)),
    ("ForMaskGeneration", ("mask-generation",)),
    ("ForKeypointDetection", ("keypoint-detection",)),
    ("ForVideoClassification", ("video-classification",)),
    ("ForAudioClassification", ("audio-classification",)),
    ("ForAudioFrameClassification", ("audio-classification",)),
    ("ForCTC", ("automatic-speech-recognition",)),
    ("ForSpeechSeq2Seq", ("automatic-speech-recognition",)),
    ("ForTextToSpeech", ("text-to-speech",)),
    ("ForTextToWaveform", ("text-to-speech",)),
    ("ForVision2Seq", ("image-text-to-text",)),
    ("ForImageTextToText", ("image-text-to-text",)),
    ("ForVisualQuestionAnswering", ("visual-question-answering",)),
    ("ForDocumentQuestionAnswering", ("document-question-answering",)),
    ("ForTableQuestionAnswering", ("table-question-answering",)),
    ("ForZeroShotImageClassification", ("zero-shot-image-classification",)),
    ("ForZeroShotObjectDetection", ("zero-shot-object-detection",)),
    ("ForConditionalGeneration", ("text2text-generation",)),
    ("ForSeq2SeqLM", ("text2text-generation",)),
    ("ForImageToImage", ("image-to-image",)),
    ("ForSuperResolution", ("image-to-image",)),
    ("ForTimeSeriesForecasting", ("time-series-forecasting",)),
    ("ForPrediction", ("time-series-forecasting",)),
)


def tasks_for_architecture(architecture: str) -> tuple[str, ...]:
    """The pipeline tasks a transformers architecture class serves (empty if unknown)."""
    if architecture in _ARCHITECTURE_TASKS:
        return _ARCHITECTURE_TASKS[architecture]
    for suffix, tasks in _SUFFIX_TASKS:
        if architecture.endswith(suffix):
            return tasks
    # A bare backbone ("BertModel", "MPNetModel") produces hidden states: embeddings.
    if re.fullmatch(r"[A-Z][A-Za-z0-9_]*Model", architecture):
        return ("feature-extraction",)
    return ()
