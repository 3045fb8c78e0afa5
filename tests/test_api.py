"""The use-cases in modelport.api: persistence, import/export, remote catalogs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelport
import modelport.api as api
from modelport.catalog.loader import dump_catalog
from modelport.errors import (
    CatalogError,
    CatalogShrinkError,
    CatalogValidationError,
    DuplicateModelError,
    InvalidReferenceError,
    ModelNotFoundError,
    RemoteError,
)
from tests.catalog_server import serve_catalogs
from tests.conftest import FIXTURES, make_entry


def _doc(n: int, prefix: str = "remote/model") -> bytes:
    return dump_catalog([make_entry(f"{prefix}-{i}") for i in range(n)]).encode()


def test_catalog_starts_on_the_bundled_entries(_isolated_home: Path) -> None:
    catalog = modelport.get_catalog()
    assert len(catalog) >= 150
    assert (_isolated_home / "modelport.db").exists()
    assert modelport.show_model("minilm").id == "sentence-transformers/all-MiniLM-L6-v2"
    assert modelport.show_model("hf:sentence-transformers/all-MiniLM-L6-v2@main").id == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert modelport.show_model("openai:gpt-4o").id == "openai/gpt-4o"
    with pytest.raises(InvalidReferenceError):
        modelport.show_model("hf:../../etc")
    with pytest.raises(ModelNotFoundError):
        modelport.show_model("definitely-not-a-model-zzzz")


def test_bundled_catalog_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_BUNDLED_CATALOG", "false")
    api.reset()
    assert len(modelport.get_catalog()) == 0


def test_user_entries_and_usage_persist_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(dump_catalog([make_entry("acme/alpha"), make_entry("acme/beta")]))
    report = api.import_catalog(path)
    assert (report.added, report.replaced) == (2, 0)
    api.get_catalog().record_usage("acme/alpha", 3)
    api.reset()  # as if a new process started
    catalog = api.get_catalog()
    assert "acme/alpha" in catalog
    assert catalog.usage("acme/alpha") == 3
    with pytest.raises(DuplicateModelError):
        api.import_catalog(path)
    report = api.import_catalog(path, replace=True)
    assert (report.added, report.replaced) == (0, 2)
    exported = json.loads(api.export_catalog(provider="acme"))
    assert [e["id"] for e in exported["entries"]] == ["acme/alpha", "acme/beta"]
    api.remove_entry("acme/alpha")
    api.reset()
    assert "acme/alpha" not in api.get_catalog()


def test_user_entry_overrides_a_bundled_one_and_removal_restores_it() -> None:
    original = api.show_model("openai/gpt-4o")
    api.add_entries([original.model_copy(update={"description": "my notes"})], replace=True)
    assert api.show_model("openai/gpt-4o").description == "my notes"
    api.reset()
    assert api.show_model("openai/gpt-4o").description == "my notes"
    api.remove_entry("openai/gpt-4o")
    assert api.show_model("openai/gpt-4o").description == original.description
    with pytest.raises(CatalogError, match="bundled"):
        api.remove_entry("openai/gpt-4o")


def test_import_refuses_invalid_files_whole(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    entries = [make_entry("ok/one").to_json_dict(), {"id": "broken", "name": "x"}]
    bad.write_text(json.dumps({"entries": entries}))
    with pytest.raises(CatalogValidationError) as info:
        api.import_catalog(bad)
    paths = [p for p, _ in info.value.problems]
    assert "$.entries[1].provider" in paths
    assert "$.entries[1].source" in paths
    assert "ok/one" not in api.get_catalog()
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps([make_entry("d/x").to_json_dict(), make_entry("d/x").to_json_dict()]))
    with pytest.raises(CatalogValidationError, match="duplicate id"):
        api.import_catalog(dup)
    notjson = tmp_path / "n.json"
    notjson.write_text("{nope")
    with pytest.raises(CatalogValidationError, match="not valid JSON"):
        api.import_catalog(notjson)
    with pytest.raises(CatalogError, match="does not exist"):
        api.import_catalog(tmp_path / "missing.json")


def test_import_litellm_format() -> None:
    report = api.import_catalog(FIXTURES / "litellm_map.json", format="litellm", replace=True)
    assert report.added + report.replaced >= 8
    assert api.show_model("anthropic/claude-sonnet-4-5").pricing is not None


def test_remote_catalog_update_shrink_guard_and_force() -> None:
    with serve_catalogs() as server:
        server.routes["/catalog.json"] = (200, _doc(10))
        api.add_remote_catalog("team", f"{server.url}/catalog.json")
        [report] = api.update_catalogs()
        assert (report.before, report.after) == (0, 10)
        assert "remote/model-3" in api.get_catalog()
        server.routes["/catalog.json"] = (200, _doc(7))
        with pytest.raises(CatalogShrinkError) as info:
            api.update_catalogs("team")
        assert (info.value.before, info.value.after) == (10, 7)
        assert "remote/model-9" in api.get_catalog()  # nothing changed
        [report] = api.update_catalogs("team", force=True)
        assert report.after == 7
        assert "remote/model-9" not in api.get_catalog()
        server.routes["/catalog.json"] = (200, b'{"entries": [{"id": "x"}]}')
        with pytest.raises(CatalogValidationError):
            api.update_catalogs("team")
        server.routes["/catalog.json"] = (500, b"oops")
        with pytest.raises(RemoteError, match="HTTP 500"):
            api.update_catalogs("team")
        assert "remote/model-6" in api.get_catalog()
        [source] = api.remote_catalogs()
        assert source.entry_count == 7
        assert source.refreshed_at is not None
    api.remove_remote_catalog("team")
    assert "remote/model-6" not in api.get_catalog()
    with pytest.raises(CatalogError):
        api.update_catalogs()


def test_remote_catalog_never_overwrites_a_user_entry() -> None:
    api.add_entries([make_entry("remote/model-1", description="mine")])
    with serve_catalogs() as server:
        server.routes["/c.json"] = (200, _doc(3))
        api.add_remote_catalog("team", f"{server.url}/c.json")
        [report] = api.update_catalogs()
    assert report.kept_local == ("remote/model-1",)
    assert api.show_model("remote/model-1").description == "mine"
    assert "remote/model-2" in api.get_catalog()


def test_remote_unreachable_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_catalogs() as server:
        url = server.url
    api.add_remote_catalog("gone", f"{url}/c.json")
    with pytest.raises(RemoteError, match="Cannot reach"):
        api.update_catalogs("gone")


def test_validate_and_select_through_the_api() -> None:
    result = api.validate_model("llama 3.1 8b instruct", gpu_memory="8GB")
    assert result.fit.value == "does-not-fit"
    assert api.validate_model("minilm", gpu_memory="0").fit.value == "fits"
    picks = api.select_models("feature-extraction", include_api=False, limit=3)
    assert picks
    assert all(p.entry.source.value == "self-hosted" for p in picks)
