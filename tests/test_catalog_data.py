"""Catalog data a user ranks by: download sizes and formats as each source states them."""

from __future__ import annotations

import pytest

from modelport.api import search_everywhere
from modelport.catalog.loader import load_bundled_entries
from modelport.hubs.search import FederatedResult, _merge_and_rank
from tests.conftest import make_entry
from tests.test_cli import run as cli


def test_a_quantized_model_weighs_its_quantized_size() -> None:
    base = make_entry("meta-llama/Base-1B", parameters=1_000_000_000)
    assert base.weights_bytes == 2_000_000_000
    four_bit = make_entry(
        "unsloth/Base-1B-bnb-4bit",
        parameters=1_000_000_000,
        quantization={"method": "bitsandbytes", "bits": 4},
    )
    assert four_bit.weights_bytes == 500_000_000
    assert make_entry("openai/x", source="api", parameters=10**9).weights_bytes is None
    bundled = {e.id: e for e in load_bundled_entries()}
    unsloth = bundled["unsloth/Llama-3.2-1B-Instruct-bnb-4bit"]
    assert unsloth.weights_bytes is not None and unsloth.effective_parameters is not None
    assert unsloth.weights_bytes < unsloth.effective_parameters  # under a byte a weight


def test_catalog_search_rows_carry_the_quantized_size() -> None:
    found = search_everywhere("Llama-3.2-1B-Instruct-bnb-4bit", sources=["catalog"], timeout=10)
    row = next(
        r for r in found.results if r.ref == "catalog:unsloth/Llama-3.2-1B-Instruct-bnb-4bit"
    )
    entry = next(e for e in load_bundled_entries() if e.id == row.name)
    assert row.size == entry.weights_bytes
    assert row.size is not None and entry.effective_parameters is not None
    assert row.size < entry.effective_parameters * 2


def test_merged_rows_keep_each_sources_format() -> None:
    catalog = FederatedResult(
        "catalog:acme/net",
        "catalog",
        "acme/net",
        "image-classification",
        90.0,
        also=("hf:acme/net",),
    )
    hub = FederatedResult(
        "hf:acme/net", "hf", "acme/net", "image-classification", 80.0, format="safetensors"
    )
    zoo = FederatedResult(
        "onnx:acme/net", "onnx", "acme/net", "image-classification", 70.0, format="onnx"
    )
    [merged] = _merge_and_rank([catalog, hub, zoo], {"catalog", "hf", "onnx"})
    assert merged.ref == "catalog:acme/net"
    assert set(merged.formats) == {"safetensors", "onnx"}


def test_show_prints_the_quantized_weights(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "show", "unsloth/Llama-3.3-70B-Instruct-bnb-4bit")
    assert code == 0
    assert "about 35.3 GB" in out  # 70.6B parameters at 4 bits, not 141 GB at 16
