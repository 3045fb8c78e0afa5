from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import pytest

from modelport.catalog.catalog import Catalog
from modelport.catalog.entry import Source, catalog_json_schema
from modelport.catalog.loader import bundled_catalog_files, load_bundled_entries

REQUIRED_PROVIDERS = {
    "openai",
    "anthropic",
    "google",
    "groq",
    "cohere",
    "mistral",
    "deepseek",
    "meta",
    "qwen",
    "nvidia",
    "microsoft",
}


def test_bundled_catalog_is_large_valid_and_unique() -> None:
    entries = load_bundled_entries()
    assert len(entries) >= 150
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    assert {e.provider for e in entries} >= REQUIRED_PROVIDERS
    curated = [e for e in entries if e.source is Source.SELF_HOSTED]
    assert len(curated) >= 100


def test_every_file_is_one_provider_and_matches_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(catalog_json_schema())
    data = resources.files("modelport.catalog") / "data"
    for name in bundled_catalog_files():
        doc = json.loads((data / name).read_text())
        errors = list(validator.iter_errors(doc))
        assert errors == [], f"{name}: {errors[0].message if errors else ''}"
        providers = Counter(e["provider"] for e in doc["entries"])
        assert list(providers) == [name.removesuffix(".json")], name


def test_popular_self_hosted_models_are_there() -> None:
    catalog = Catalog(load_bundled_entries())
    for name in (
        "sentence-transformers/all-MiniLM-L6-v2",
        "openai-community/gpt2",
        "google/vit-base-patch16-224",
        "microsoft/resnet-50",
        "openai/whisper-tiny",
        "dslim/bert-base-NER",
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "unsloth/Llama-3.2-1B-Instruct-bnb-4bit",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "microsoft/Phi-3.5-mini-instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
    ):
        assert name in catalog, name
    unsloth = catalog["unsloth/Llama-3.2-1B-Instruct-bnb-4bit"]
    assert unsloth.quantization is not None
    assert unsloth.quantization.bits == 4
    assert unsloth.training_defaults is not None
    assert unsloth.training_defaults.lora is not None
    assert unsloth.lineage is not None
    assert unsloth.lineage.base_model == "meta-llama/Llama-3.2-1B-Instruct"


def test_hosted_facts_carry_source_and_date() -> None:
    for entry in load_bundled_entries():
        if entry.pricing is not None:
            assert entry.pricing.source_url and entry.pricing.as_of, entry.id
        if entry.context_window is not None:
            assert entry.source_url and entry.as_of, entry.id
