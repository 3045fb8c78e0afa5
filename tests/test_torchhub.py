"""PyTorch Hub: the real client code against a loopback server speaking GitHub's protocol."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelport import api
from modelport.errors import (
    IntegrityError,
    RevisionNotFoundError,
    UnsafeFileError,
    UntrustedCodeError,
)
from tests.github_server import GitHubServer, Repo, serve_github
from tests.test_cli import run

torch = pytest.importorskip("torch")

TINYNET = textwrap.dedent(
    """
    import torch


    class TinyNet(torch.nn.Module):
        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(4, num_classes)

        def forward(self, x):
            return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))
    """
)

HUBCONF = textwrap.dedent(
    """
    import os
    import pathlib

    import torch

    from tinynet import TinyNet

    dependencies = ["torch"]

    # Proves whether this file ran: untrusted repositories must never get here.
    if os.environ.get("HUBCONF_RAN_MARKER"):
        pathlib.Path(os.environ["HUBCONF_RAN_MARKER"]).write_text("ran")


    def tiny_classifier(num_classes: int = 10, pretrained: bool = False):
        \"\"\"A tiny image classifier for 3x32x32 images with `num_classes` scores.\"\"\"
        torch.manual_seed(0)
        model = TinyNet(num_classes)
        if pretrained:
            url = os.environ["TINY_WEIGHTS_URL"]
            model.load_state_dict(torch.hub.load_state_dict_from_url(url, progress=False))
        return model


    tiny_classifier.input_shape = (1, 3, 32, 32)


    def mlp(width: int = 8):
        \"\"\"Two linear layers over `width` features.\"\"\"
        torch.manual_seed(1)
        return torch.nn.Sequential(
            torch.nn.Linear(width, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
        )


    def _helper():
        return None
    """
)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[GitHubServer]:
    with serve_github() as server:
        server.add(
            Repo(
                "acme",
                "tinyvision",
                {
                    "main": {"hubconf.py": HUBCONF, "tinynet.py": TINYNET, "README.md": "# tiny"},
                    "v1.0": {"hubconf.py": HUBCONF, "tinynet.py": TINYNET},
                },
                description="tiny vision models for PyTorch Hub",
                stars=42,
            )
        )
        server.add(Repo("acme", "nohub", {"main": {"README.md": "no hubconf"}}))
        monkeypatch.setenv("MODELPORT_GITHUB_URL", server.url)
        monkeypatch.setenv("MODELPORT_GITHUB_API_URL", server.url + "/api")
        monkeypatch.setenv("HUBCONF_RAN_MARKER", str(tmp_path / "hubconf-ran"))
        api.reset()
        yield server


def test_pull_stores_the_commit_without_running_anything(
    github: GitHubServer, tmp_path: Path
) -> None:
    pulled = api.pull("torch:acme/tinyvision:v1.0/tiny_classifier")
    repo = github.repos["acme/tinyvision"]
    assert pulled.hub == "torch"
    assert pulled.id == "acme/tinyvision"
    assert pulled.revision == repo.sha("v1.0")
    assert sorted(f for f, _, _ in pulled.files) == ["hubconf.py", "tinynet.py"]
    assert (Path(pulled.path) / "hubconf.py").read_text() == HUBCONF
    assert not (tmp_path / "hubconf-ran").exists()
    # The archive came through GitHub's redirect to codeload, for that exact commit.
    assert any(
        r.startswith(f"/codeload/acme/tinyvision/legacy.zip/{pulled.revision}")
        for r in github.requests
    )
    again = api.pull("torch:acme/tinyvision:v1.0/mlp")
    assert again.from_store and again.revision == pulled.revision


def test_untrusted_hubconf_is_refused_and_never_runs(
    capsys: pytest.CaptureFixture[str], github: GitHubServer, tmp_path: Path
) -> None:
    with pytest.raises(UntrustedCodeError, match="acme/tinyvision is not trusted"):
        api.convert("torch:acme/tinyvision/tiny_classifier")
    assert not (tmp_path / "hubconf-ran").exists()
    result = run(capsys, *["run", "torch:acme/tinyvision/mlp", "--input", "[[1,2,3,4,5,6,7,8]]"])
    assert result[0] == 3
    assert "modelport trust acme/tinyvision" in (result[1] + result[2])
    assert "Traceback" not in (result[1] + result[2])
    assert not (tmp_path / "hubconf-ran").exists()


def test_trusted_entrypoint_exports_with_parity_and_runs(
    capsys: pytest.CaptureFixture[str], github: GitHubServer, tmp_path: Path
) -> None:
    result = run(capsys, *["trust", "acme/tinyvision"])
    assert result[0] == 0, result[1] + result[2]
    listed = run(capsys, *["trust", "--list", "--json"])
    assert json.loads(listed[1])[0]["repo"] == "acme/tinyvision"

    converted = api.convert("torch:acme/tinyvision/tiny_classifier?num_classes=5")
    assert (tmp_path / "hubconf-ran").exists()
    assert converted.task == "image-classification"
    assert converted.max_abs_diff < 1e-4

    # The same image through PyTorch and through modelport's pipeline.
    from PIL import Image

    rng = np.random.default_rng(0)
    image_path = tmp_path / "cat.png"
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(image_path)
    model = api.load_model("torch:acme/tinyvision/tiny_classifier?num_classes=5")
    pixels = model.pipeline.preprocess(str(image_path))
    assert pixels.shape == (1, 3, 32, 32)
    import sys

    sys.path.insert(0, str(api.stored_model("torch:acme/tinyvision").path))
    try:
        from tinynet import TinyNet  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    reference = TinyNet(5).eval()
    with torch.no_grad():
        expected = torch.softmax(reference(torch.from_numpy(pixels)), dim=-1)[0].numpy()
    answer = model(str(image_path), top_k=5)
    assert len(answer) == 5
    for item in answer:
        index = int(item["label"].removeprefix("LABEL_"))
        assert item["score"] == pytest.approx(float(expected[index]), abs=1e-5)


def test_input_shape_and_tensor_pipeline(
    capsys: pytest.CaptureFixture[str], github: GitHubServer
) -> None:
    api.convert("torch:acme/tinyvision/mlp?width=4", trust=True)
    result = run(
        capsys,
        *["run", "torch:acme/tinyvision/mlp?width=4", "--input", "[[1,2,3,4],[0,0,0,1]]", "--json"],
    )
    assert result[0] == 0, result[1] + result[2]
    out = json.loads(result[1] + result[2])
    assert out["task"] == "tensors"
    got = np.array(out["result"]["output"])
    torch.manual_seed(1)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        expected = reference(torch.tensor([[1.0, 2, 3, 4], [0, 0, 0, 1]])).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    bad = run(capsys, *["run", "torch:acme/tinyvision/mlp?width=4", "--input", "[[1,2,3]]"])
    assert bad[0] != 0 and "shape" in (bad[1] + bad[2])
    # --input-shape overrides what would be inferred.
    explicit = api.convert("torch:acme/tinyvision/mlp?width=6", trust=True, input_shapes=["x=1,6"])
    assert explicit.task == "tensors"
    assert "x" in (explicit.path / "modelport.yml").read_text()


def test_show_lists_entrypoints_from_source(
    capsys: pytest.CaptureFixture[str], github: GitHubServer, tmp_path: Path
) -> None:
    result = run(capsys, *["show", "torch:acme/tinyvision", "--json"])
    assert result[0] == 0, result[1] + result[2]
    data = json.loads(result[1] + result[2])
    names = {e["name"]: e for e in data["entrypoints"]}
    assert set(names) == {"tiny_classifier", "mlp"}
    assert "3x32x32" in names["tiny_classifier"]["doc"]
    assert "num_classes" in names["tiny_classifier"]["signature"]
    assert data["dependencies"] == ["torch"]
    assert not (tmp_path / "hubconf-ran").exists()
    human = run(capsys, *["show", "torch:acme/tinyvision"])
    assert "tiny_classifier" in human[1] and "Two linear layers" in human[1]


def test_search_finds_hub_repositories(github: GitHubServer) -> None:
    found = api.search_hub("tiny", hub="torch")
    assert [m.id for m in found] == ["acme/tinyvision"]
    assert found[0].likes == 42


def test_bad_refs_archives_and_repos_fail_clearly(
    capsys: pytest.CaptureFixture[str], github: GitHubServer
) -> None:
    with pytest.raises(RevisionNotFoundError):
        api.pull("torch:acme/tinyvision:v9/tiny_classifier")
    result = run(capsys, *["pull", "torch:acme/nohub"])
    assert result[0] != 0 and "not a PyTorch Hub repository" in (result[1] + result[2])
    result = run(capsys, *["pull", "torch:acme/missing/x"])
    assert result[0] != 0 and "Traceback" not in (result[1] + result[2])

    github.tamper = True
    with pytest.raises(IntegrityError, match="is of commit"):
        api.pull("torch:acme/tinyvision:v1.0/mlp")
    github.tamper = False
    github.hostile = True
    with pytest.raises(UnsafeFileError):
        api.pull("torch:acme/tinyvision/mlp")
    assert api.list_models(registry="torch") == []
    store = api.get_store().layout.root
    assert not list((store / "tmp").glob("*")) if (store / "tmp").exists() else True
    assert not (store.parent / "escaped.py").exists()


def test_token_is_sent_and_rate_limits_are_explained(
    capsys: pytest.CaptureFixture[str], github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.token = "s3cret"
    result = run(capsys, *["pull", "torch:acme/tinyvision/mlp"])
    assert result[0] != 0
    monkeypatch.setenv("GITHUB_TOKEN", "s3cret")
    assert api.pull("torch:acme/tinyvision/mlp").hub == "torch"
    assert "Bearer s3cret" in github.auth_headers
    github.rate_limited = True
    result = run(capsys, *["pull", "torch:acme/tinyvision:v1.0/mlp"])
    assert result[0] != 0 and "rate-limiting" in (result[1] + result[2])
    assert "s3cret" not in (result[1] + result[2])


def test_offline_run_uses_the_store(github: GitHubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    api.load_model("torch:acme/tinyvision/mlp", trust=True)
    github.httpd.shutdown()
    monkeypatch.setenv("MODELPORT_OFFLINE", "1")
    api.reset()
    model = api.load_model("torch:acme/tinyvision/mlp")
    assert model.task == "tensors"
    assert np.asarray(model([[0.0] * 8])["output"]).shape == (1, 3)
    # The server is gone: an offline pull is answered by the store alone.
    assert api.pull("torch:acme/tinyvision/mlp").from_store


def test_pretrained_weights_are_fetched_once_into_the_store(
    github: GitHubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import io
    import sys

    from tests.catalog_server import serve_catalogs

    sys.path.insert(0, str(tmp_path))
    (tmp_path / "tinynet_ref.py").write_text(TINYNET)
    try:
        from tinynet_ref import TinyNet  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(7)
    trained = TinyNet(3).eval()
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    with serve_catalogs() as weights:
        weights.routes["/tiny-3.pth"] = (200, buffer.getvalue())
        monkeypatch.setenv("TINY_WEIGHTS_URL", weights.url + "/tiny-3.pth")
        ref = "torch:acme/tinyvision/tiny_classifier?num_classes=3&pretrained=true"
        model = api.load_model(ref, trust=True)
        fetched = [r for r in weights.requests if r == "/tiny-3.pth"]
    assert len(fetched) == 1
    cached = list((api.get_store().layout.root / "torch-hub").rglob("tiny-3.pth"))
    assert len(cached) == 1
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = trained(torch.from_numpy(x)).numpy()
    got = model.session.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_pull_convert_in_one_command(
    capsys: pytest.CaptureFixture[str], github: GitHubServer, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "pull", "torch:acme/tinyvision/mlp", "--convert", "-q")
    assert code == 3 and "modelport trust acme/tinyvision" in out + err
    assert not (tmp_path / "hubconf-ran").exists()
    code, out, err = run(capsys, "pull", "torch:acme/tinyvision/mlp", "--convert", "--trust", "-q")
    assert code == 0, out + err
    assert (Path(out.strip()) / "modelport.yml").exists()


@pytest.mark.parametrize("switch", ["MODELPORT_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_pytorch_hub_is_served_from_the_store_or_refused_without_the_network(
    github: GitHubServer, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    from modelport.errors import OfflineError

    api.pull("torch:acme/tinyvision:v1.0/tiny_classifier")
    monkeypatch.setenv(switch, "1")
    github.requests.clear()
    assert api.pull("torch:acme/tinyvision:v1.0/tiny_classifier").from_store
    with pytest.raises(OfflineError) as refused:
        api.pull("torch:acme/nohub")
    assert refused.value.one_line().startswith(
        "torch:acme/nohub is not complete in the store and offline mode is on."
    )
    assert github.requests == []


def test_file_options_are_refused_for_pytorch_hub(github: GitHubServer) -> None:
    from modelport.errors import InvalidValueError

    with pytest.raises(InvalidValueError) as refused:
        api.pull("torch:acme/tinyvision/tiny_classifier", include=["*.py"], allow_pickle=True)
    assert refused.value.message.startswith(
        "--include and --allow-pickle cannot apply to torch: models: a repository is kept whole"
    )
    assert github.requests == []


def test_the_stored_manifest_names_the_entry_points(github: GitHubServer) -> None:
    pulled = api.pull("torch:acme/tinyvision:v1.0/tiny_classifier")
    manifest = api.get_store().read_manifest("torch", pulled.id, pulled.revision)
    assert manifest is not None and "entrypoint:tiny_classifier" in manifest.tags


def test_the_preflight_answer_is_not_asked_again(
    github: GitHubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counts = []
    for progress in (None, lambda event: None):
        monkeypatch.setenv("MODELPORT_HOME", str(tmp_path / f"home-{len(counts)}"))
        api.reset()
        github.requests.clear()
        api.pull("torch:acme/tinyvision:v1.0/tiny_classifier", progress=progress)
        counts.append(len(github.requests))
    # With progress a preflight asks the hub first; the pull then asks nothing more.
    assert counts[0] == counts[1], github.requests
