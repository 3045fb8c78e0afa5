"""Import OpenRouter's models API (``GET https://openrouter.ai/api/v1/models``) into entries.

Each model has ``id`` (``vendor/model``), ``name``, ``created`` (unix time),
``context_length``, ``architecture.input_modalities``/``output_modalities``, ``pricing``
as strings of USD per token (``"-1"`` for variable routers) and ``supported_parameters``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modelport.catalog.entry import (
    Capabilities,
    Category,
    Modality,
    ModelEntry,
    Pricing,
    Source,
    Status,
)

__all__ = ["OPENROUTER_MODELS_URL", "OpenRouterImport", "import_openrouter_models"]

OPENROUTER_MODELS_URL = "https://openrouter.ai/api/v1/models"

_MODALITIES = {m.value for m in Modality}


@dataclass(frozen=True)
class OpenRouterImport:
    """Entries built from an OpenRouter listing, and the models skipped with why."""

    entries: tuple[ModelEntry, ...]
    skipped: tuple[tuple[str, str], ...]


def _usd_per_million(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number < 0 or number != number:  # "-1" marks a variable-price router
        return None
    return round(number * 1e6, 6)


def _usd(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number == number else None


def _positive_int(value: Any) -> int | None:
    return (
        int(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        else None
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _modalities(values: Any) -> list[Modality]:
    if not isinstance(values, list):
        return []
    return [Modality(v) for v in values if isinstance(v, str) and v in _MODALITIES]


def _entry(item: Mapping[str, Any], *, as_of: dt.date, source_url: str) -> ModelEntry | str:
    model_id = item.get("id")
    if not isinstance(model_id, str) or not re.fullmatch(r"[A-Za-z0-9][\w.:/+@-]*", model_id):
        return "missing or malformed id"
    arch = _mapping(item.get("architecture"))
    inputs = _modalities(arch.get("input_modalities")) or [Modality.TEXT]
    outputs = _modalities(arch.get("output_modalities")) or [Modality.TEXT]
    params = {p for p in item.get("supported_parameters") or [] if isinstance(p, str)}
    if Modality.IMAGE in outputs and Modality.TEXT not in outputs:
        category, tasks = Category.IMAGE_GENERATION, ["text-to-image"]
    elif Modality.IMAGE in inputs:
        category, tasks = Category.VISION_VLM, ["text-generation", "image-text-to-text"]
    else:
        category, tasks = Category.TEXT_LLM, ["text-generation"]
    if Modality.AUDIO in inputs:
        tasks.append("audio-text-to-text")
    raw_pricing = _mapping(item.get("pricing"))
    pricing = Pricing(
        input_per_1m_tokens=_usd_per_million(raw_pricing.get("prompt")),
        output_per_1m_tokens=_usd_per_million(raw_pricing.get("completion")),
        cached_input_per_1m_tokens=_usd_per_million(raw_pricing.get("input_cache_read")),
        cache_write_per_1m_tokens=_usd_per_million(raw_pricing.get("input_cache_write")),
        reasoning_output_per_1m_tokens=_usd_per_million(raw_pricing.get("internal_reasoning"))
        or None,
        per_image=_usd(raw_pricing.get("image")),
        per_query=_usd(raw_pricing.get("request")),
        source_url=source_url,
        as_of=as_of,
    )
    top = _mapping(item.get("top_provider"))
    created = item.get("created")
    release = (
        dt.datetime.fromtimestamp(created, dt.UTC).date()
        if isinstance(created, int | float) and created > 0
        else None
    )
    name = item.get("name") or model_id
    try:
        return ModelEntry(
            id=f"openrouter/{model_id}",
            name=str(name),
            provider="openrouter",
            source=Source.API,
            category=category,
            tasks=tasks,
            aliases=[f"openrouter:{model_id}"],
            status=Status.EXPERIMENTAL
            if ":free" in model_id or "preview" in model_id
            else Status.STABLE,
            description=str(item.get("description") or "")[:2000],
            input_modalities=inputs,
            output_modalities=outputs,
            context_window=_positive_int(item.get("context_length"))
            or _positive_int(top.get("context_length")),
            max_output_tokens=_positive_int(top.get("max_completion_tokens")),
            release_date=release,
            capabilities=Capabilities(
                chat=Modality.TEXT in outputs,
                vision=Modality.IMAGE in inputs,
                audio_input=Modality.AUDIO in inputs,
                tool_calling="tools" in params,
                structured_outputs="structured_outputs" in params,
                json_mode="response_format" in params,
                reasoning="reasoning" in params or "include_reasoning" in params,
                logprobs="logprobs" in params,
                temperature="temperature" in params,
                web_search="web_search_options" in params or None,
                prompt_caching=pricing.cached_input_per_1m_tokens is not None or None,
                streaming=True,
                inference=True,
                moderation=None,
            ),
            # A router priced per call ("-1") has no known price at all: no pricing, not $0.
            pricing=pricing if pricing.any_known() else None,
            source_url=source_url,
            as_of=as_of,
            notes="Imported from OpenRouter's models API; prices are OpenRouter's.",
        )
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        return f"invalid: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def import_openrouter_models(
    data: Mapping[str, Any], *, as_of: dt.date, source_url: str = OPENROUTER_MODELS_URL
) -> OpenRouterImport:
    """Build entries from a parsed ``/api/v1/models`` response."""
    items = data.get("data")
    if not isinstance(items, list):
        return OpenRouterImport(entries=(), skipped=(("$", "no 'data' list"),))
    entries: dict[str, ModelEntry] = {}
    skipped: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, Mapping):
            skipped.append(("?", "not an object"))
            continue
        made = _entry(item, as_of=as_of, source_url=source_url)
        key = str(item.get("id"))
        if isinstance(made, str):
            skipped.append((key, made))
        elif made.id in entries:
            skipped.append((key, "listed twice"))
        else:
            entries[made.id] = made
    return OpenRouterImport(entries=tuple(entries.values()), skipped=tuple(skipped))
