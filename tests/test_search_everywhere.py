"""`modelport search` across the catalog and every hub: parallel, time-bounded, merged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("onnx")

import modelport.api as api
from modelport.api import search_everywhere
from tests.catalog_server import CatalogServer, serve_catalogs
from tests.github_server import GitHubServer, Repo, serve_github
from tests.hf_server import HubServer, serve_hub
from tests.kaggle_server import KaggleModel, KaggleServer, serve_kaggle
from tests.test_cli import run as cli
from tests.test_onnx_zoo import entry, tiny_classifier
from tests.test_pull import tiny_files


@pytest.fixture
def hubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HubServer, CatalogServer]]:
    with (
        serve_hub() as hf,
        serve_catalogs() as zoo,
        serve_github() as github,
        serve_kaggle() as kaggle,
    ):
        _other_hubs(github, kaggle, monkeypatch)
        hf.add_repo(
            "sentence-transformers/all-MiniLM-L6-v2",
            tiny_files(),
            pipeline_tag="sentence-similarity",
            downloads=1000,
            likes=50,
        )
        data = tiny_classifier(13)
        # Where the zoo lives now: one repository per model and opset, the .onnx at its root.
        hf.add_repo(
            "onnxmodelzoo/tinynet_Opset13",
            {"tinynet.onnx": data, "README.md": b"# TinyNet"},
            pipeline_tag="image-classification",
            library_name="onnx",
            downloads=5,
        )
        hf.add_repo(
            "acme/minilm-finetune",
            tiny_files(seed=4),
            pipeline_tag="sentence-similarity",
            downloads=3,
        )
        zoo.routes["/ONNX_HUB_MANIFEST.json"] = (
            200,
            json.dumps(
                [
                    entry("TinyNet", "tinynet.onnx", data, 13, ["vision", "classification"]),
                ]
            ).encode(),
        )
        monkeypatch.setenv("HF_ENDPOINT", hf.url)
        monkeypatch.setenv("MODELPORT_ONNX_ZOO_URL", zoo.url)
        api.reset()
        yield hf, zoo


def _other_hubs(
    github: GitHubServer, kaggle: KaggleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyTorch Hub and Kaggle Models answer too, each with one tinynet of its own."""
    github.add(Repo("acme", "tinynet", {"main": {"hubconf.py": "def tinynet():\n    pass\n"}}))
    kaggle.models.append(
        KaggleModel(
            "acme",
            "tinynet",
            "MODEL_FRAMEWORK_TENSOR_FLOW_2",
            "default",
            {1: {"saved_model.pb": b"x"}},
            tags=("Image Classification",),
        )
    )
    monkeypatch.setenv("MODELPORT_GITHUB_URL", github.url)
    monkeypatch.setenv("MODELPORT_GITHUB_API_URL", github.url + "/api")
    monkeypatch.setenv("MODELPORT_KAGGLE_URL", kaggle.url)


def test_every_source_answers_and_duplicates_merge(
    hubs: tuple[HubServer, CatalogServer],
) -> None:
    found = search_everywhere("minilm", timeout=10)
    assert found.failures == {}
    assert set(found.seconds) == {"catalog", "hf", "onnx", "tfhub", "torch"}
    refs = [r.ref for r in found.results]
    top = found.results[0]
    # The catalog entry and the Hub repo it names are one result.
    assert top.ref == "catalog:sentence-transformers/all-MiniLM-L6-v2"
    assert "hf:sentence-transformers/all-MiniLM-L6-v2" in top.also
    assert "hf:sentence-transformers/all-MiniLM-L6-v2" not in refs
    assert "hf:acme/minilm-finetune" in refs
    tiny = search_everywhere("tinynet", timeout=10)
    [merged] = [r for r in tiny.results if r.source in ("hf", "onnx")]
    assert {merged.ref, *merged.also} == {"hf:onnxmodelzoo/tinynet_Opset13", "onnx:tinynet"}
    # Other registries' tinynets are other models: listed, not merged.
    refs = {r.ref for r in tiny.results}
    assert {"torch:acme/tinynet", "tfhub:acme/tinynet/tensorFlow2/default"} <= refs
    assert tiny.failures == {}


def test_a_hub_that_is_down_or_slow_leaves_the_others(
    hubs: tuple[HubServer, CatalogServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    hf, _ = hubs
    hf.knobs.search_delay = 3.0
    started = time.perf_counter()
    found = search_everywhere("minilm", timeout=1.0)
    assert time.perf_counter() - started < 2.5
    # The zoo lives on the Hub too, so a slow Hub slows onnx: as well.
    assert found.failures == {"hf": "no answer within 1 s", "onnx": "no answer within 1 s"}
    assert found.results[0].ref == "catalog:sentence-transformers/all-MiniLM-L6-v2"
    hf.knobs.search_delay = 0
    monkeypatch.setenv("MODELPORT_ONNX_ZOO_URL", "http://127.0.0.1:9")
    api.reset()
    found = search_everywhere("tinynet", timeout=10)
    # The legacy manifest is down; the zoo's Hub organisation still answers.
    assert "onnx" not in found.failures
    [merged] = [r for r in found.results if r.source in ("hf", "onnx")]
    assert {merged.ref, *merged.also} == {"hf:onnxmodelzoo/tinynet_Opset13", "onnx:tinynet"}


def test_cli_search_everywhere(
    hubs: tuple[HubServer, CatalogServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "search", "minilm", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["failures"] == {}
    assert doc["results"][0]["ref"] == "catalog:sentence-transformers/all-MiniLM-L6-v2"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    api.reset()
    code, out, err = cli(capsys, "search", "minilm", "-q")
    assert code == 0
    assert "warning: hf:" in err
    assert "catalog:sentence-transformers/all-MiniLM-L6-v2" in out.split("\n")


def test_compare_models_side_by_side(
    hubs: tuple[HubServer, CatalogServer], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(
        capsys,
        "compare",
        "minilm",
        "onnx:tinynet",
        "hf:acme/minilm-finetune",
        "openai:gpt-4o",
        "--gpu-memory",
        "8GB",
        "--json",
    )
    assert code == 0
    minilm, tiny, finetune, gpt = json.loads(out)
    assert minilm["task"] == "feature-extraction"
    assert minilm["parameters"] == 22_700_000
    assert minilm["fit"] == "fits"
    assert minilm["format"] == "safetensors"
    assert tiny["format"] == "onnx"
    assert tiny["opset"] == 13
    assert tiny["task"] == "image-classification"
    assert finetune["downloads"] == 3
    assert gpt["fit"] == "fits"  # a hosted API needs no local hardware
    assert gpt["errors"] == []
    assert gpt["size_bytes"] is None  # nothing to download
    code, out, _ = cli(capsys, "compare", "minilm", "onnx:tinynet")
    assert "opset" in out
    assert "fit here" in out
    code, _, err = cli(capsys, "compare", "minilm")
    assert code == 2
    assert "at least two" in err


def test_recommend_across_the_catalog_and_hubs(
    hubs: tuple[HubServer, CatalogServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(
        capsys, "recommend", "--task", "sentence-similarity", "--no-api", "--json", "--limit", "20"
    )
    assert code == 0
    rows = json.loads(out)
    refs = [r["ref"] for r in rows]
    assert "catalog:sentence-transformers/all-MiniLM-L6-v2" in refs
    assert "hf:acme/minilm-finetune" in refs
    # The catalog already has the Hub's MiniLM: it is not listed twice.
    assert "hf:sentence-transformers/all-MiniLM-L6-v2" not in refs
    hub_row = next(r for r in rows if r["ref"] == "hf:acme/minilm-finetune")
    assert hub_row["fit"] == "fits"
    assert any("downloads" in reason for reason in hub_row["reasons"])
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    api.reset()
    code, out, err = cli(
        capsys, "recommend", "--task", "sentence-similarity", "--no-api", "--limit", "30"
    )
    assert code == 0
    assert "warning: hf:" in err
    assert "all-MiniLM-L6-v2" in out


def test_filters_by_category_format_and_size(
    hubs: tuple[HubServer, CatalogServer], capsys: pytest.CaptureFixture[str]
) -> None:
    everything = {r.ref: r for r in search_everywhere("tinynet", timeout=10).results}
    assert everything["torch:acme/tinynet"].format == "pytorch"
    assert everything["tfhub:acme/tinynet/tensorFlow2/default"].format == "tensorflow"
    by_format = search_everywhere("tinynet", timeout=10, format="tensorflow")
    assert [r.ref for r in by_format.results] == ["tfhub:acme/tinynet/tensorFlow2/default"]
    onnx_only = search_everywhere("tinynet", timeout=10, format="onnx")
    assert {r.source for r in onnx_only.results} <= {"hf", "onnx"} and onnx_only.results
    vision = search_everywhere("minilm", timeout=10, category="vision")
    assert vision.results == ()  # MiniLM is a text model wherever it is listed
    text = search_everywhere("minilm", timeout=10, category="text")
    assert text.results[0].ref == "catalog:sentence-transformers/all-MiniLM-L6-v2"
    # The catalog knows MiniLM's size (22.7M parameters); a limit below it drops the model,
    # while listings of unknown size stay.
    small = search_everywhere("minilm", timeout=10, max_size=1_000_000)
    assert all(r.size is None or r.size <= 1_000_000 for r in small.results)
    refs = [r.ref for r in small.results]
    assert "catalog:sentence-transformers/all-MiniLM-L6-v2" not in refs
    assert "hf:acme/minilm-finetune" in refs
    code, out, err = cli(capsys, "search", "tinynet", "--format", "pytorch", "-q")
    assert code == 0 and out.split() == ["torch:acme/tinynet"]
    code, out, err = cli(capsys, "search", "tinynet", "--category", "sound")
    assert code == 2 and "Unknown category" in out + err
    code, out, err = cli(capsys, "search", "tinynet", "--max-size", "lots")
    assert code == 2


def test_compare_and_recommend_across_registries(
    hubs: tuple[HubServer, CatalogServer], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(
        capsys,
        "compare",
        "onnx:tinynet",
        "torch:acme/tinynet",
        "tfhub:acme/tinynet/tensorFlow2/default",
        "--json",
    )
    assert code == 0, out
    zoo, torch_repo, kaggle = json.loads(out)
    assert (zoo["format"], zoo["opset"]) == ("onnx", 13)
    assert torch_repo["format"] == "pytorch" and torch_repo["errors"] == []
    assert kaggle["format"] == "tensorflow" and kaggle["errors"] == []
    code, out, _ = cli(capsys, "recommend", "--task", "image-classification", "--json")
    assert code == 0
    refs = json.dumps(json.loads(out))
    assert "onnx:" in refs or "hf:onnxmodelzoo/tinynet_Opset13" in refs
    assert "tfhub:acme/tinynet/tensorFlow2/default" in refs
