"""Import LiteLLM's ``model_prices_and_context_window.json`` into catalog entries.

The map is keyed by model name; each value has ``litellm_provider``, ``mode``, costs
per token (or per image, second, character), ``max_input_tokens``/``max_output_tokens``
and ``supports_*`` flags. Prices become USD per 1M tokens with explicit units.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modelport.catalog.entry import (
    Capabilities,
    Category,
    Deprecation,
    Modality,
    ModelEntry,
    Pricing,
    Source,
    Status,
)

__all__ = [
    "LITELLM_MAP_URL",
    "LiteLLMImport",
    "import_litellm_map",
    "provider_for",
    "without_placeholder_prices",
]

LITELLM_MAP_URL = (
    "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"
)

#: LiteLLM provider names → modelport provider names.
PROVIDER_NAMES: dict[str, str] = {
    "gemini": "google",
    "vertex_ai-language-models": "google",
    "vertex_ai-embedding-models": "google",
    "cohere_chat": "cohere",
    "text-completion-openai": "openai",
    "mistral": "mistral",
    "codestral": "mistral",
    "text-completion-codestral": "mistral",
    "xai": "xai",
    "meta_llama": "meta",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "perplexity": "perplexity",
}

_MODES: dict[str, tuple[Category, list[str], list[Modality], list[Modality]]] = {
    "chat": (Category.TEXT_LLM, ["text-generation"], [Modality.TEXT], [Modality.TEXT]),
    "responses": (Category.TEXT_LLM, ["text-generation"], [Modality.TEXT], [Modality.TEXT]),
    "completion": (Category.TEXT_LLM, ["text-generation"], [Modality.TEXT], [Modality.TEXT]),
    "embedding": (
        Category.EMBEDDING,
        ["feature-extraction", "sentence-similarity"],
        [Modality.TEXT],
        [Modality.EMBEDDING],
    ),
    "image_generation": (
        Category.IMAGE_GENERATION,
        ["text-to-image"],
        [Modality.TEXT],
        [Modality.IMAGE],
    ),
    "video_generation": (
        Category.VIDEO_GENERATION,
        ["text-to-video"],
        [Modality.TEXT],
        [Modality.VIDEO],
    ),
    "audio_transcription": (
        Category.AUDIO,
        ["automatic-speech-recognition"],
        [Modality.AUDIO],
        [Modality.TEXT],
    ),
    "audio_speech": (Category.AUDIO, ["text-to-speech"], [Modality.TEXT], [Modality.AUDIO]),
    "moderation": (Category.MODERATION, ["moderation"], [Modality.TEXT], [Modality.TEXT]),
    "rerank": (Category.RERANKER, ["text-ranking"], [Modality.TEXT], [Modality.TEXT]),
    "ocr": (Category.MULTIMODAL, ["image-to-text"], [Modality.IMAGE], [Modality.TEXT]),
}

_FLAGS: dict[str, str] = {
    "supports_function_calling": "tool_calling",
    "supports_tool_choice": "tool_calling",
    "supports_parallel_function_calling": "parallel_tool_calls",
    "supports_response_schema": "structured_outputs",
    "supports_vision": "vision",
    "supports_audio_input": "audio_input",
    "supports_audio_output": "audio_output",
    "supports_video_input": "video_input",
    "supports_reasoning": "reasoning",
    "supports_prompt_caching": "prompt_caching",
    "supports_system_messages": "system_messages",
    "supports_web_search": "web_search",
}

# Keys that price one image size or quality ("low/1024-x-1024/gpt-image-1") are
# variants of one model, not models.
_VARIANT_KEY = re.compile(r"^(?:[a-z]+/)?\d+-x-\d+/|^(?:low|medium|high|standard|hd)/")


@dataclass(frozen=True)
class LiteLLMImport:
    """Entries built from a LiteLLM map, and the keys skipped with why."""

    entries: tuple[ModelEntry, ...]
    skipped: tuple[tuple[str, str], ...]


def provider_for(litellm_provider: str) -> str:
    """The modelport provider name for a LiteLLM provider name."""
    name = PROVIDER_NAMES.get(litellm_provider, litellm_provider)
    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-") or "unknown"


# The map writes 0 for a price it does not know and for a unit the model is not charged
# by (a reranker's tokens, an image model's tokens): a 0 is never "free", it is unknown.
def _per_million(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return round(float(value) * 1e6, 6)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def without_placeholder_prices(entry: ModelEntry) -> ModelEntry:
    """An entry imported from the map with its 0 prices read as unknown, as ``_entry`` does now.

    For entries a previous importer wrote with the map's zeros (see
    ``scripts/update_bundled_catalog.py --reapply``).
    """
    if entry.pricing is None:
        return entry
    fields = {
        name: None
        for name, value in entry.pricing
        if isinstance(value, float) and value == 0 and name != "currency"
    }
    if not fields:
        return entry
    pricing = entry.pricing.model_copy(update=fields)
    return entry.model_copy(update={"pricing": pricing if pricing.any_known() else None})


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def _model_name(key: str, litellm_provider: str) -> str:
    for prefix in (litellm_provider + "/", "gemini/", "models/"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _entry(
    key: str, spec: Mapping[str, Any], *, as_of: dt.date, source_url: str
) -> ModelEntry | str:
    litellm_provider = spec.get("litellm_provider")
    if not isinstance(litellm_provider, str) or not litellm_provider:
        return "no litellm_provider"
    mode = spec.get("mode", "chat")
    if mode not in _MODES:
        return f"mode {mode!r} is not a model kind the catalog tracks"
    if key.startswith("ft:"):
        return "fine-tuning price of a base model, not a model"
    if _VARIANT_KEY.match(key):
        return "an image size or quality variant"
    provider = provider_for(litellm_provider)
    name = _model_name(key, litellm_provider)
    model_id = f"{provider}/{name}"
    category, tasks, inputs, outputs = _MODES[mode]
    inputs, outputs, tasks = list(inputs), list(outputs), list(tasks)

    flags: dict[str, bool] = {}
    for flag, cap in _FLAGS.items():
        if isinstance(spec.get(flag), bool):
            flags[cap] = flags.get(cap, False) or spec[flag]
    if flags.get("vision"):
        inputs.append(Modality.IMAGE)
        if mode in ("chat", "responses"):
            category = Category.VISION_VLM
            tasks.append("image-text-to-text")
    if flags.get("audio_input") and Modality.AUDIO not in inputs:
        inputs.append(Modality.AUDIO)
    if flags.get("audio_output") and Modality.AUDIO not in outputs:
        outputs.append(Modality.AUDIO)
    if flags.get("video_input"):
        inputs.append(Modality.VIDEO)
    chat = mode in ("chat", "responses")
    caps = Capabilities(
        chat=chat,
        completion=mode == "completion" or None,
        embeddings=mode == "embedding",
        streaming=True if chat or mode == "completion" else None,
        inference=True,
        moderation=mode == "moderation" or None,
        reranking=mode == "rerank" or None,
        image_output=mode == "image_generation" or None,
        **flags,
    )
    audio_per_second = _number(spec.get("input_cost_per_second"))
    characters = _number(spec.get("input_cost_per_character"))
    image = _number(spec.get("output_cost_per_image")) or _number(spec.get("input_cost_per_image"))
    pricing = Pricing(
        input_per_1m_tokens=_per_million(spec.get("input_cost_per_token")),
        output_per_1m_tokens=_per_million(spec.get("output_cost_per_token")),
        cached_input_per_1m_tokens=_per_million(spec.get("cache_read_input_token_cost")),
        cache_write_per_1m_tokens=_per_million(spec.get("cache_creation_input_token_cost")),
        reasoning_output_per_1m_tokens=_per_million(spec.get("output_cost_per_reasoning_token")),
        input_audio_per_1m_tokens=_per_million(spec.get("input_cost_per_audio_token")),
        output_audio_per_1m_tokens=_per_million(spec.get("output_cost_per_audio_token")),
        per_image=image,
        per_audio_minute=round(audio_per_second * 60, 6) if audio_per_second is not None else None,
        per_1k_characters=round(characters * 1000, 6) if characters is not None else None,
        per_query=_number(spec.get("input_cost_per_query")),
        per_video_second=_number(spec.get("output_cost_per_video_per_second")),
        source_url=source_url,
        as_of=as_of,
    )
    pricing_or_none = pricing if pricing.any_known() else None
    context = _positive_int(spec.get("max_input_tokens")) or _positive_int(spec.get("max_tokens"))
    max_output = _positive_int(spec.get("max_output_tokens"))
    status, deprecation = Status.STABLE, None
    raw_date = spec.get("deprecation_date")
    if isinstance(raw_date, str):
        try:
            when = dt.date.fromisoformat(raw_date)
        except ValueError:
            when = None
        if when is not None:
            retired = when <= as_of
            status = Status.DEPRECATED if retired else Status.STABLE
            deprecation = Deprecation(
                message=(
                    f"retired by {provider} on {when.isoformat()}"
                    if retired
                    else f"{provider} plans to retire it on {when.isoformat()}"
                ),
                deprecation_date=when,
            )
    if "preview" in name or "exp" in name.split("-") or "experimental" in name:
        status = Status.EXPERIMENTAL if status is Status.STABLE else status
    try:
        return ModelEntry(
            id=model_id,
            name=name,
            provider=provider,
            source=Source.API,
            category=category,
            tasks=tasks,
            aliases=[key] if key != model_id and key != name else [],
            status=status,
            deprecation=deprecation,
            open_weights=None,
            input_modalities=list(dict.fromkeys(inputs)),
            output_modalities=list(dict.fromkeys(outputs)),
            context_window=context,
            max_output_tokens=max_output,
            capabilities=caps,
            pricing=pricing_or_none,
            source_url=source_url,
            as_of=as_of,
            notes="Generated from LiteLLM's model map; facts it lacks are left unknown.",
        )
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        return f"invalid: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def import_litellm_map(
    data: Mapping[str, Any],
    *,
    as_of: dt.date,
    providers: Iterable[str] | None = None,
    source_url: str = LITELLM_MAP_URL,
) -> LiteLLMImport:
    """Build entries from a parsed LiteLLM map; ``providers`` keeps only those (modelport names)."""
    wanted = {p.lower() for p in providers} if providers is not None else None
    entries: dict[str, ModelEntry] = {}
    skipped: list[tuple[str, str]] = []
    fine_tunable: set[str] = set()
    for key, spec in data.items():
        if key == "sample_spec" or not isinstance(spec, Mapping):
            skipped.append((key, "not a model"))
            continue
        if wanted is not None and provider_for(str(spec.get("litellm_provider", ""))) not in wanted:
            continue
        if key.startswith("ft:"):
            fine_tunable.add(key[3:])
        made = _entry(key, spec, as_of=as_of, source_url=source_url)
        if isinstance(made, str):
            skipped.append((key, made))
        elif made.id in entries:
            skipped.append((key, f"same model as {made.id}"))
        else:
            entries[made.id] = made
    result = []
    for entry in entries.values():
        if entry.name in fine_tunable or any(a in fine_tunable for a in entry.aliases):
            caps = entry.capabilities.model_copy(update={"fine_tuning": True})
            entry = entry.model_copy(update={"capabilities": caps})
        result.append(entry)
    return LiteLLMImport(entries=tuple(result), skipped=tuple(skipped))
