"""Hermetic tests: every test gets its own MODELPORT_HOME and fresh process caches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport.catalog.entry import ModelEntry

FIXTURES = Path(__file__).parent / "fixtures"

# The reference libraries (sentence-transformers, transformers) must use PyTorch even
# though the `tf` extra installs TensorFlow beside it.
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import modelport.api as api

    home = tmp_path / "home"
    monkeypatch.setenv("MODELPORT_HOME", str(home))
    for var in (
        "MODELPORT_DATABASE_URL",
        "MODELPORT_CONFIG",
        "MODELPORT_GPU_MEMORY",
        "MODELPORT_BUNDLED_CATALOG",
        "MODELPORT_DEBUG",
        "MODELPORT_HTTP_TIMEOUT",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "MODELPORT_OFFLINE",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
        "KAGGLE_API_ENVIRONMENT",
    ):
        monkeypatch.delenv(var, raising=False)
    # Every other registry points at a closed local port unless a test serves it.
    for var in (
        "MODELPORT_ONNX_ZOO_URL",
        "MODELPORT_KAGGLE_URL",
        "MODELPORT_TFHUB_URL",
        "MODELPORT_GITHUB_URL",
        "MODELPORT_GITHUB_API_URL",
    ):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    # Nothing may reach the real Hub or read the developer's Hugging Face token.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    api.reset()
    yield home
    api.reset()


def make_entry(model_id: str = "acme/tiny-model", **fields: Any) -> ModelEntry:
    """A valid entry with sensible defaults; override any field."""
    data: dict[str, Any] = {
        "id": model_id,
        "name": model_id.rsplit("/", 1)[-1],
        "provider": model_id.split("/", 1)[0].lower() if "/" in model_id else "acme",
        "source": "self-hosted",
        "category": "text-llm",
        "tasks": ["text-generation"],
    }
    data.update(fields)
    return ModelEntry.model_validate(data)
