from __future__ import annotations

import datetime as dt
import json

import pytest

from modelport.catalog.entry import Category, Status
from modelport.catalog.importers.litellm import import_litellm_map
from tests.conftest import FIXTURES

AS_OF = dt.date(2026, 11, 23)


@pytest.fixture
def imported() -> dict[str, object]:
    data = json.loads((FIXTURES / "litellm_map.json").read_text())
    made = import_litellm_map(data, as_of=AS_OF)
    return {"entries": {e.id: e for e in made.entries}, "skipped": dict(made.skipped)}


def test_prices_become_per_million_with_units(imported: dict) -> None:
    gpt = imported["entries"]["openai/gpt-4o"]
    assert gpt.pricing.input_per_1m_tokens == pytest.approx(2.5)
    assert gpt.pricing.output_per_1m_tokens == pytest.approx(10.0)
    assert gpt.pricing.cached_input_per_1m_tokens == pytest.approx(1.25)
    assert gpt.pricing.as_of == AS_OF
    assert gpt.as_of == AS_OF
    assert gpt.source_url
    assert "litellm" in gpt.source_url.lower()
    assert gpt.context_window == 128000
    assert gpt.max_output_tokens == 16384
    assert gpt.category is Category.VISION_VLM
    caps = gpt.capabilities
    assert caps.vision
    assert caps.tool_calling
    assert caps.parallel_tool_calls
    assert caps.structured_outputs
    assert caps.fine_tuning  # an ft: key exists for it
    claude = imported["entries"]["anthropic/claude-sonnet-4-5"]
    assert claude.pricing.cache_write_per_1m_tokens == pytest.approx(3.75)
    assert claude.capabilities.reasoning


def test_other_units(imported: dict) -> None:
    whisper = imported["entries"]["openai/whisper-1"]
    assert whisper.pricing.per_audio_minute == pytest.approx(0.006)
    assert whisper.tasks == ["automatic-speech-recognition"]
    tts = imported["entries"]["openai/tts-1"]
    assert tts.pricing.per_1k_characters == pytest.approx(0.015)
    emb = imported["entries"]["openai/text-embedding-3-small"]
    assert emb.category is Category.EMBEDDING
    assert emb.capabilities.embeddings


def test_providers_are_mapped_and_prefixes_dropped(imported: dict) -> None:
    assert "google/gemini-2.5-pro" in imported["entries"]
    assert "groq/llama-3.1-8b-instant" in imported["entries"]


def test_deprecation_and_skips(imported: dict) -> None:
    old = imported["entries"]["openai/gpt-3.5-turbo-0613"]
    assert old.status is Status.DEPRECATED
    assert old.deprecation.deprecation_date == dt.date(2024, 6, 13)
    skipped = imported["skipped"]
    assert "variant" in skipped["low/1024-x-1024/gpt-image-1"]
    assert "realtime" in skipped["gpt-realtime"]
    assert "not a model" in skipped["sample_spec"]
    assert "ft:gpt-4o" in skipped
    # Nonsense values are left unknown, not invented.
    broken = imported["entries"]["openai/broken"]
    assert broken.context_window is None
    assert broken.pricing is None


def test_provider_filter() -> None:
    data = json.loads((FIXTURES / "litellm_map.json").read_text())
    made = import_litellm_map(data, as_of=AS_OF, providers=["anthropic"])
    assert [e.id for e in made.entries] == ["anthropic/claude-sonnet-4-5"]


def test_a_zero_price_in_the_map_is_unknown_not_free() -> None:
    from modelport.catalog.catalog import Catalog

    data = {
        "gpt-4o-mini": {
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": 1.5e-7,
            "output_cost_per_token": 6e-7,
        },
        "command-unpriced": {
            "litellm_provider": "cohere_chat",
            "mode": "chat",
            "input_cost_per_token": 0,
            "output_cost_per_token": 0,
        },
        "rerank-v3.5": {
            "litellm_provider": "cohere",
            "mode": "rerank",
            "input_cost_per_token": 0,
            "output_cost_per_token": 0,
            "input_cost_per_query": 0.002,
        },
        "embed-small": {
            "litellm_provider": "openai",
            "mode": "embedding",
            "input_cost_per_token": 2e-8,
            "output_cost_per_token": 0,
        },
    }
    made = {e.id: e for e in import_litellm_map(data, as_of=AS_OF).entries}
    assert made["cohere/command-unpriced"].pricing is None
    rerank = made["cohere/rerank-v3.5"].pricing
    assert (rerank.input_per_1m_tokens, rerank.per_query) == (None, 0.002)
    embed = made["openai/embed-small"].pricing
    assert embed.output_per_1m_tokens is None
    assert embed.blended_per_1m_tokens() == pytest.approx(0.02)
    by_price = [e.id for e in Catalog(made.values()).query(sort="price")]
    assert by_price[:2] == ["openai/embed-small", "openai/gpt-4o-mini"]
    assert set(by_price[2:]) == {"cohere/command-unpriced", "cohere/rerank-v3.5"}


def test_bundled_api_entries_carry_no_placeholder_zero_prices() -> None:
    from modelport.catalog.entry import Source
    from modelport.catalog.importers.litellm import without_placeholder_prices
    from modelport.catalog.loader import load_bundled_entries

    for entry in load_bundled_entries():
        if entry.source is Source.API and entry.notes.startswith("Generated from LiteLLM"):
            assert without_placeholder_prices(entry) == entry, entry.id
