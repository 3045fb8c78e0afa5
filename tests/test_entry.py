from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from modelport.catalog.entry import (
    Category,
    LatencyProfile,
    ModelEntry,
    Pricing,
    Source,
    catalog_json_schema,
)
from tests.conftest import make_entry


def test_minimal_entry_defaults_unknown_facts_to_none() -> None:
    entry = make_entry()
    assert entry.source is Source.SELF_HOSTED
    assert entry.category is Category.TEXT_LLM
    assert entry.parameters is None
    assert entry.capabilities.vision is None
    assert entry.capabilities.supported() == []


def test_enums_are_str_enums() -> None:
    assert isinstance(Source.API, str)
    assert Source("api") is Source.API


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"status": "deprecated"}, "deprecation"),
        ({"parameters": -5}, "greater than 0"),
        ({"parameters": 10, "active_parameters": 20}, "active_parameters"),
        ({"tasks": ["not-a-task"]}, "Unknown task"),
        ({"provider": "OpenAI"}, "lowercase"),
        ({"pricing": {"input_per_1m_tokens": -1}}, "greater than or equal to 0"),
        ({"moe": {"num_experts": 2, "experts_per_token": 4}}, "experts_per_token"),
        ({"requirements": {"min_vram_gb": 10, "recommended_vram_gb": 5}}, "recommended_vram_gb"),
        ({"requirements": {"min_compute_capability": "eight"}}, "pattern"),
        ({"unknown_field": 1}, "Extra inputs"),
        ({"id": "../escape"}, "id may hold"),
    ],
)
def test_invalid_entries_are_refused(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_entry(**fields)
    assert fragment in str(info.value)


def test_task_aliases_are_canonicalized() -> None:
    entry = make_entry(tasks=["causal_lm", "text-generation", "ner"])
    assert entry.tasks == ["text-generation", "token-classification"]


def test_pricing_has_explicit_units_and_a_blend() -> None:
    pricing = Pricing(input_per_1m_tokens=2.5, output_per_1m_tokens=10.0)
    assert pricing.blended_per_1m_tokens() == pytest.approx(2.5 * 0.75 + 10 * 0.25)
    assert Pricing().blended_per_1m_tokens() is None
    assert "per_1k_characters" in Pricing.model_fields
    assert "per_audio_minute" in Pricing.model_fields


def test_latency_presets() -> None:
    small = LatencyProfile.from_preset("small")
    xlarge = LatencyProfile.from_preset("xlarge")
    reasoning = LatencyProfile.from_preset("reasoning")
    assert small.estimate_ms(100) is not None
    assert xlarge.estimate_ms(100) is not None
    assert small.estimate_ms(100) < xlarge.estimate_ms(100)  # type: ignore[operator]
    assert reasoning.estimate_ms(100, reasoning=True) > reasoning.estimate_ms(100)  # type: ignore[operator]
    with pytest.raises(ValueError, match="unknown latency preset"):
        LatencyProfile.from_preset("gigantic")


def test_json_schema_is_published_and_validates_entries() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = catalog_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = {"schema_version": 1, "entries": [make_entry().to_json_dict()]}
    jsonschema.validate(json.loads(json.dumps(doc)), schema)
    bad = {"entries": [{"id": "x"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_entry_round_trips_through_json() -> None:
    entry = make_entry(
        parameters=8_000_000_000,
        pricing={"input_per_1m_tokens": 1.0, "as_of": "2026-01-01"},
        moe={"num_experts": 8, "experts_per_token": 2, "total_parameters": 8_000_000_000},
    )
    assert ModelEntry.model_validate(entry.to_json_dict()) == entry
