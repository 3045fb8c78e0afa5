"""Options honoured on every conversion path, artifacts accounted for in the store, and a
conversion that leaves the terminal and the working directory alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

import modelport.api as api
from modelport.convert.export import convert_folder, source_digest
from modelport.convert.spec import read_yaml
from tests import tiny_models
from tests.test_torchhub import HUBCONF, TINYNET, github  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build_encoder(
        tmp_path_factory.mktemp("enc") / "tiny-embedder", "sentence-similarity"
    )


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build_encoder(
        tmp_path_factory.mktemp("cls") / "tiny-sentiment", "text-classification"
    )


def _hub_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hubconf.py").write_text(HUBCONF)
    (root / "tinynet.py").write_text(TINYNET)
    return root


def _ops(model: Path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(model), load_external_data=False).graph.node}


def _spec(result: object) -> dict[str, object]:
    extra = read_yaml(result.path / "modelport.yml")["modelport"]  # type: ignore[attr-defined]
    assert isinstance(extra, dict)
    return extra


def test_quantize_and_optimize_apply_to_pytorch_hub_exports_checked_on_the_kept_file(
    tmp_path: Path,
) -> None:
    folder = _hub_folder(tmp_path / "tinyvision")
    out = tmp_path / "converted"
    common = {"out_root": out, "entrypoint": "tiny_classifier", "entry_kwargs": {}}
    plain = convert_folder(folder, **common)  # type: ignore[arg-type]
    optimized = convert_folder(folder, optimize=True, **common)  # type: ignore[arg-type]
    quantized = convert_folder(folder, quantize="int8", **common)  # type: ignore[arg-type]
    assert len({plain.path, optimized.path, quantized.path}) == 3
    assert optimized.optimize and _spec(optimized)["options"] == {
        "optimize": True,
        "quantize": None,
    }
    assert "ConvInteger" in _ops(quantized.path / "model.onnx")
    # The numbers are the int8 file's, not those of the float export before quantization.
    assert quantized.max_abs_diff > 10 * max(plain.max_abs_diff, 1e-7)
    assert _spec(quantized)["parity"]["max_abs_diff"] == quantized.max_abs_diff  # type: ignore[index]
    assert quantized.cosine >= 0.98


def _ready_onnx(folder: Path, dims: tuple[int, int, int], *, outlier: bool = False) -> Path:
    import torch

    folder.mkdir()
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(dims[0], dims[1]), torch.nn.ReLU(), torch.nn.Linear(dims[1], dims[2])
    )
    if outlier:
        # One hidden channel is always 10,000 and the output ignores it: int8's one scale
        # for the whole activation then rounds every channel the output reads to zero, on
        # any CPU (a merely random net quantizes well or badly depending on the kernels).
        with torch.no_grad():
            net[0].weight[0].zero_()
            net[0].bias[0] = 1e4
            net[2].weight[:, 0] = 0
            net[2].bias.zero_()
    torch.onnx.export(
        net,
        (torch.randn(1, dims[0]),),
        str(folder / "model.onnx"),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
        dynamo=False,
    )
    return folder


def test_quantize_and_optimize_apply_to_a_ready_onnx_model(tmp_path: Path) -> None:
    import hashlib

    folder = _ready_onnx(tmp_path / "zoo-model", (64, 128, 10))
    before = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    out = tmp_path / "converted"
    plain = convert_folder(folder, out_root=out)
    optimized = convert_folder(folder, out_root=out, optimize=True)
    quantized = convert_folder(folder, out_root=out, quantize="int8")
    assert (plain.quantize, optimized.optimize, quantized.quantize) == (None, True, "int8")
    assert "MatMulInteger" in _ops(quantized.path / "model.onnx")
    assert quantized.max_abs_diff > 0 and quantized.cosine >= 0.98
    assert _spec(quantized)["options"] == {"optimize": False, "quantize": "int8"}
    assert optimized.max_abs_diff < 1e-5
    # The source (a store blob, hard-linked) is never rewritten.
    assert hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest() == before


def test_an_int8_ready_onnx_model_that_strays_is_refused_with_its_numbers(tmp_path: Path) -> None:
    from modelport.errors import ConversionError

    folder = _ready_onnx(tmp_path / "fragile", (16, 32, 4), outlier=True)
    out = tmp_path / "converted"
    with pytest.raises(ConversionError, match=r"only to cosine 0\.\d+ \(needs 0\.98\)"):
        convert_folder(folder, out_root=out, quantize="int8")
    assert not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_quantize_applies_to_a_tensorflow_saved_model(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    from tests.test_tfhub import MAKE_SAVED_MODEL

    folder = tmp_path / "saved"
    subprocess.run(
        [sys.executable, "-c", MAKE_SAVED_MODEL, str(folder)], check=True, capture_output=True
    )
    out = tmp_path / "converted"
    plain = convert_folder(folder, out_root=out)
    quantized = convert_folder(folder, out_root=out, quantize="int8")
    assert quantized.path != plain.path and quantized.quantize == "int8"
    assert "MatMulInteger" in _ops(quantized.path / "model.onnx")
    assert quantized.max_abs_diff > plain.max_abs_diff
    assert _spec(quantized)["options"] == {"optimize": False, "quantize": "int8"}


def test_the_loaded_model_cache_tells_input_shapes_apart(
    github: object,  # noqa: F811
) -> None:
    ref = "torch:acme/tinyvision/mlp"
    first = api.load_model(ref, trust=True, input_shapes=["1,8"])
    named = api.load_model(ref, trust=True, input_shapes=["features=1,8"])
    assert [i.name for i in first.session.get_inputs()] == ["input"]
    assert [i.name for i in named.session.get_inputs()] == ["features"]
    assert api.load_model(ref, trust=True, input_shapes=["1,8"]) is first


def test_a_list_runs_in_length_sorted_batches_in_the_callers_order(encoder: Path) -> None:
    model = api.load_model(str(encoder))
    texts = [
        "hello world",
        "the quick brown fox jumps over the lazy dog near the river bank today " * 3,
        "paris",
        "who wrote this book ada lovelace lives in london",
        "good movie",
    ]
    one_by_one = np.stack([model(t) for t in texts])
    shapes: list[tuple[int, ...]] = []
    session = model.pipeline.session

    class Recording:
        """Records the shapes ONNX Runtime is given (the real session runs them)."""

        def __getattr__(self, name: str) -> object:
            return getattr(session, name)

        def run(self, names: object, feed: dict[str, np.ndarray]) -> object:
            shapes.append(feed["input_ids"].shape)
            return session.run(names, feed)

    model.pipeline.session = Recording()
    try:
        batched = model(texts, batch_size=2)
    finally:
        model.pipeline.session = session
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert [s[0] for s in shapes] == [2, 2, 1]
    lengths = [s[1] for s in shapes]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]


def test_a_long_list_is_not_run_at_once_by_default(encoder: Path) -> None:
    """Without a batch size, 70 sentences run as mini-batches, not padded to the longest."""
    model = api.load_model(str(encoder))
    texts = [f"sentence number {i} " + "word " * (i % 9) for i in range(70)]
    rows: list[int] = []
    session = model.pipeline.session

    class Recording:
        def __getattr__(self, name: str) -> object:
            return getattr(session, name)

        def run(self, names: object, feed: dict[str, np.ndarray]) -> object:
            rows.append(feed["input_ids"].shape[0])
            return session.run(names, feed)

    model.pipeline.session = Recording()
    try:
        vectors = model(texts)
    finally:
        model.pipeline.session = session
    assert len(vectors) == 70
    assert sum(rows) == 70 and max(rows) == 32


def test_the_same_weights_convert_once_from_the_store_or_a_folder(
    classifier: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.hf_server import serve_hub

    with serve_hub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        api.reset()
        hub.add_folder("acme/tiny-sentiment", classifier, pipeline_tag="text-classification")
        from_store = api.convert("hf:acme/tiny-sentiment")
    from_folder = api.convert(str(classifier))
    assert from_folder.cached and from_folder.path == from_store.path
    converted = api.get_store().layout.root / "converted"
    assert [p.name for p in converted.iterdir() if not p.name.startswith(".")] == [from_store.key]


def test_a_folder_digest_is_remembered_until_a_file_changes(
    classifier: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(classifier, folder)
    cache = tmp_path / "digests"
    first = source_digest(folder, cache_dir=cache)
    assert source_digest(folder) == first
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    assert source_digest(folder, cache_dir=cache) != first


def test_artifacts_and_torch_hub_weights_count_in_stats_and_go_with_rm(
    github: object,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import io

    import torch

    from tests.catalog_server import serve_catalogs

    torch.manual_seed(7)
    sys.path.insert(0, str(tmp_path))
    (tmp_path / "tinynet_stats.py").write_text(TINYNET)
    try:
        from tinynet_stats import TinyNet  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    buffer = io.BytesIO()
    torch.save(TinyNet(3).state_dict(), buffer)
    with serve_catalogs() as weights:
        weights.routes["/tiny-3.pth"] = (200, buffer.getvalue())
        monkeypatch.setenv("TINY_WEIGHTS_URL", weights.url + "/tiny-3.pth")
        api.load_model(
            "torch:acme/tinyvision/tiny_classifier?num_classes=3&pretrained=true", trust=True
        )
    stats = api.get_store().stats()
    assert stats.converted == 1 and stats.converted_size > 0
    assert stats.torch_hub_size >= len(buffer.getvalue())
    assert stats.total_size >= stats.size + stats.converted_size + stats.torch_hub_size
    root = api.get_store().layout.root
    plan = api.plan_remove("torch:acme/tinyvision")
    assert {a.kind for a in plan.artifacts} >= {"converted", "torch-hub"}
    assert plan.freed_bytes >= stats.converted_size + stats.torch_hub_size
    api.get_store().execute(plan)
    assert not [p for p in (root / "converted").iterdir() if not p.name.startswith(".")]
    assert not any((root / "torch-hub").iterdir())
    after = api.get_store().stats()
    assert (after.converted_size, after.torch_hub_size) == (0, 0)


def test_prune_max_size_removes_artifacts_converted_from_folders(
    encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli import run as cli

    api.load_model(str(encoder))
    root = api.get_store().layout.root
    assert api.get_store().stats().converted_size > 0
    code, out, _ = cli(capsys, "cache", "prune", "--max-size", "1KB")
    assert code == 0, out
    assert not [p for p in (root / "converted").iterdir() if not p.name.startswith(".")]
    assert not list((root / "ort-cache").glob("*.onnx"))
    code, out, _ = cli(capsys, "cache", "stats")
    assert "converted to ONNX" in out


def test_the_optimized_graph_is_cached_in_the_store_not_the_users_folder(
    encoder: Path, tmp_path: Path
) -> None:
    import shutil

    artifact = api.convert(str(encoder)).path
    mine = tmp_path / "my-model"
    shutil.copytree(artifact, mine)
    before = sorted(p.name for p in mine.iterdir())
    api.load_model(str(mine))
    api.reset()
    api.load_model(str(mine))  # the second load measures the cached copy
    assert sorted(p.name for p in mine.iterdir()) == before
    records = list((api.get_store().layout.root / "ort-cache").glob("*.json"))
    assert any(json.loads(r.read_text())["source"] == str(mine / "model.onnx") for r in records)
    verdicts = {json.loads(r.read_text()).get("verdict") for r in records}
    assert verdicts <= {"keep", "plain"} and verdicts


def test_a_warm_run_from_a_folder_reads_neither_onnx_nor_the_database(
    encoder: Path, tmp_path: Path
) -> None:
    api.load_model(str(encoder))
    code = (
        "import sys, modelport.api as api\n"
        f"print(api.run({str(encoder)!r}, 'hello world')[:2])\n"
        "print('HEAVY', [m for m in ('onnx', 'sqlalchemy', 'torch') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert "HEAVY []" in done.stdout


def test_third_party_noise_goes_to_the_debug_log(classifier: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "MODELPORT_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "convert", str(classifier), "--quantize", "int8"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for noise in ("Warning", "warn", "pre-processing", "TorchScript", "deprecated"):
        assert noise not in done.stderr, done.stderr
    log = (home / "logs" / "debug.log").read_text()
    assert "TorchScript-based ONNX export" in log


def test_a_quantized_conversion_leaves_the_working_directory_empty(
    classifier: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    convert_folder(classifier, out_root=tmp_path / "converted", optimize=True, quantize="int8")
    assert list(cwd.iterdir()) == []


def test_symbolic_shape_inference_temp_files_stay_out_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ONNX Runtime's symbolic shape inference saves sym_shape_infer_temp.onnx and a
    # <uuid>.data into the working directory when it cannot infer every shape.
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    from modelport.convert.sandbox import contained

    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Mystery", ["h"], ["y"], domain="acme"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("acme", 1)]
    )
    monkeypatch.chdir(tmp_path)
    with contained(), pytest.raises(Exception, match="Incomplete symbolic shape inference"):
        SymbolicShapeInference.infer_shapes(model)
    assert list(tmp_path.iterdir()) == []
    assert Path.cwd() == tmp_path


def test_warnings_and_log_hints_inside_a_conversion_stay_off_stderr() -> None:
    code = textwrap.dedent(
        """
        import warnings
        from modelport.convert.sandbox import contained
        with contained():
            warnings.warn("legacy exporter", DeprecationWarning)
            import logging; logging.warning("Please consider to run pre-processing")
        print("done")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "done" and done.stderr == ""


def test_an_all_zero_output_does_not_agree_with_a_non_zero_one() -> None:
    import numpy as np

    from modelport.convert.parity import compare_outputs

    expected = [np.array([[1.0, 2.0], [0.0, 0.0]])]
    _, cosine = compare_outputs([np.zeros((2, 2))], expected)
    assert cosine == pytest.approx(0.5)  # the zero row agrees with zero, the other not at all
