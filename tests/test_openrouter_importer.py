from __future__ import annotations

import datetime as dt
import json

import pytest

import modelport.api as api
from modelport.catalog.entry import Category, Status
from modelport.catalog.importers.openrouter import import_openrouter_models
from tests.catalog_server import serve_catalogs
from tests.conftest import FIXTURES

AS_OF = dt.date(2026, 11, 23)


def _imported() -> tuple[dict[str, object], dict[str, str]]:
    data = json.loads((FIXTURES / "openrouter_models.json").read_text())
    made = import_openrouter_models(data, as_of=AS_OF)
    return {e.id: e for e in made.entries}, dict(made.skipped)


def test_prices_capabilities_and_modalities() -> None:
    entries, skipped = _imported()
    gpt = entries["openrouter/openai/gpt-4o"]
    assert gpt.pricing.input_per_1m_tokens == pytest.approx(2.5)
    assert gpt.pricing.output_per_1m_tokens == pytest.approx(10)
    assert gpt.pricing.cached_input_per_1m_tokens == pytest.approx(1.25)
    assert gpt.pricing.per_image == pytest.approx(0.003613)
    assert gpt.category is Category.VISION_VLM
    assert gpt.capabilities.tool_calling
    assert gpt.capabilities.structured_outputs
    assert gpt.capabilities.vision
    assert gpt.context_window == 128000
    assert gpt.max_output_tokens == 16384
    assert gpt.release_date == dt.date(2024, 5, 10)
    free = entries["openrouter/deepseek/deepseek-r1:free"]
    assert free.capabilities.reasoning
    assert free.status is Status.EXPERIMENTAL
    assert free.pricing.input_per_1m_tokens == 0
    router = entries["openrouter/openrouter/auto"]
    assert router.pricing is None  # "-1" means variable, not free: nothing is known
    assert "malformed" in skipped["../evil"]
    assert skipped["?"] == "not an object"


def test_openrouter_listing_as_a_remote_catalog() -> None:
    with serve_catalogs() as server:
        server.routes["/api/v1/models"] = (200, (FIXTURES / "openrouter_models.json").read_bytes())
        api.add_remote_catalog("openrouter", f"{server.url}/api/v1/models", format="openrouter")
        [report] = api.update_catalogs("openrouter")
    assert report.after == 3
    assert api.show_model("openrouter:openai/gpt-4o").id == "openrouter/openai/gpt-4o"
