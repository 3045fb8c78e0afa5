from __future__ import annotations

import pytest

from modelport.catalog.tasks import (
    TASKS,
    TaskCategory,
    canonical_task,
    get_task,
    tasks_for_architecture,
)
from modelport.errors import UnknownTaskError


def test_at_least_forty_tasks_across_categories() -> None:
    assert len(TASKS) >= 40
    categories = {t.category for t in TASKS}
    assert {
        TaskCategory.TEXT,
        TaskCategory.VISION,
        TaskCategory.AUDIO,
        TaskCategory.MULTIMODAL,
    } <= categories
    assert len({t.name for t in TASKS}) == len(TASKS)


@pytest.mark.parametrize(
    ("alias", "task"),
    [
        ("causal_lm", "text-generation"),
        ("causal-lm", "text-generation"),
        ("NER", "token-classification"),
        ("embeddings", "feature-extraction"),
        ("asr", "automatic-speech-recognition"),
        ("sentiment-analysis", "text-classification"),
        ("seq2seq", "text2text-generation"),
        ("text_generation", "text-generation"),
        ("Image Classification", "image-classification"),
        ("vqa", "visual-question-answering"),
        ("conversational", "text-generation"),
        ("zero-shot-audio-classification", "zero-shot-audio-classification"),
    ],
)
def test_aliases(alias: str, task: str) -> None:
    assert canonical_task(alias) == task


def test_unknown_task_suggests() -> None:
    with pytest.raises(UnknownTaskError) as info:
        canonical_task("text-generaton")
    assert "text-generation" in info.value.one_line()
    assert get_task("tts").category is TaskCategory.AUDIO


@pytest.mark.parametrize(
    ("architecture", "task"),
    [
        ("LlamaForCausalLM", "text-generation"),
        ("GPT2LMHeadModel", "text-generation"),
        ("BertForSequenceClassification", "text-classification"),
        ("BertForTokenClassification", "token-classification"),
        ("DistilBertForQuestionAnswering", "question-answering"),
        ("RobertaForMaskedLM", "fill-mask"),
        ("ViTForImageClassification", "image-classification"),
        ("ResNetForImageClassification", "image-classification"),
        ("WhisperForConditionalGeneration", "automatic-speech-recognition"),
        ("T5ForConditionalGeneration", "text2text-generation"),
        ("Wav2Vec2ForCTC", "automatic-speech-recognition"),
        ("DetrForObjectDetection", "object-detection"),
        ("BertModel", "feature-extraction"),
        ("CLIPModel", "zero-shot-image-classification"),
        ("Qwen2VLForConditionalGeneration", "image-text-to-text"),
        ("BlipForQuestionAnswering", "visual-question-answering"),
        ("ViltForQuestionAnswering", "visual-question-answering"),
        ("ClapModel", "zero-shot-audio-classification"),
    ],
)
def test_architecture_to_task(architecture: str, task: str) -> None:
    assert task in tasks_for_architecture(architecture)


def test_unknown_architecture_has_no_task() -> None:
    assert tasks_for_architecture("SomethingStrange") == ()


def test_image_question_answering_is_not_text_extraction() -> None:
    assert "question-answering" not in tasks_for_architecture("ViltForQuestionAnswering")
    assert "audio-classification" not in tasks_for_architecture("ClapModel")
    assert get_task("zero-shot-audio-classification").category is TaskCategory.AUDIO
