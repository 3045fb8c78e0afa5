"""TensorFlow Hub / Kaggle Models: kagglehub against a loopback server speaking Kaggle's
API, old tfhub.dev handles through the compressed format, and tf2onnx conversion."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelport import api
from modelport.errors import HubAccessError, IntegrityError, ModelNotFoundError
from tests.kaggle_server import KaggleModel, KaggleServer, serve_kaggle
from tests.test_cli import run

pytest.importorskip("kagglehub")

MAKE_SAVED_MODEL = textwrap.dedent(
    """
    import sys

    import numpy as np
    import tensorflow as tf


    class Tiny(tf.Module):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.w = tf.Variable(rng.standard_normal((8 * 8 * 3, 4)).astype("float32"))
            self.b = tf.Variable(rng.standard_normal((4,)).astype("float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="images")])
        def __call__(self, images):
            flat = tf.reshape(images, [-1, 8 * 8 * 3])
            return {"logits": tf.matmul(flat, self.w) + self.b}


    model = Tiny()
    tf.saved_model.save(model, sys.argv[1], signatures={"serving_default": model.__call__})
    """
)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("tf") / "tiny"
    subprocess.run(
        [sys.executable, "-c", MAKE_SAVED_MODEL, str(folder)], check=True, capture_output=True
    )
    return folder


@pytest.fixture
def kaggle(monkeypatch: pytest.MonkeyPatch, saved_model: Path) -> Iterator[KaggleServer]:
    files = KaggleModel.from_folder(saved_model)
    with serve_kaggle() as server:
        server.models.append(
            KaggleModel(
                "acme",
                "tiny-classifier",
                "MODEL_FRAMEWORK_TENSOR_FLOW_2",
                "default",
                {1: {"saved_model.pb": b"old"}, 2: files},
                title="Tiny image classifier",
                tags=("Image Classification",),
            )
        )
        server.legacy["acme/tiny/1"] = files
        monkeypatch.setenv("MODELPORT_KAGGLE_URL", server.url)
        monkeypatch.setenv("MODELPORT_TFHUB_URL", server.url)
        api.reset()
        yield server


def test_search_pull_and_run_a_kaggle_model(
    kaggle: KaggleServer, saved_model: Path, tmp_path: Path
) -> None:
    found = api.search_hub("tiny", hub="tfhub")
    assert [m.id for m in found] == ["acme/tiny-classifier/tensorFlow2/default"]
    assert found[0].task == "image-classification"

    pulled = api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default")
    assert pulled.revision == "2"  # the newest version, asked of the API
    names = sorted(f for f, _, _ in pulled.files)
    assert "saved_model.pb" in names and any(n.startswith("variables/") for n in names)
    stored = Path(pulled.path)
    assert (stored / "saved_model.pb").read_bytes() == (saved_model / "saved_model.pb").read_bytes()
    assert not list(stored.rglob(".kagglehub*"))
    assert any("GetModelInstance" in r for r in kaggle.requests)
    assert any(r.startswith("/storage/") for r in kaggle.requests)
    again = api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    assert again.from_store

    converted = api.convert("tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    assert converted.task == "image-classification"
    assert converted.max_abs_diff < 1e-4

    from PIL import Image

    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
        image
    )
    model = api.load_model("tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    pixels = model.pipeline.preprocess(str(image))
    assert pixels.shape == (1, 8, 8, 3)
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    # TensorFlow's own answer for the same pixels, in a child process.
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "x = np.load(sys.argv[2])\n"
        "p = tf.nn.softmax(m.signatures['serving_default'](images=x)['logits']).numpy()\n"
        "np.save(sys.argv[3], p)\n"
    )
    np.save(tmp_path / "x.npy", pixels)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(saved_model),
            str(tmp_path / "x.npy"),
            str(tmp_path / "p.npy"),
        ],
        capture_output=True,
        check=True,
    )
    assert done.returncode == 0
    expected = np.load(tmp_path / "p.npy")[0]
    answer = model(str(image), top_k=4)
    for item in answer:
        index = int(item["label"].removeprefix("LABEL_"))
        assert item["score"] == pytest.approx(float(expected[index]), abs=1e-5)


def test_old_tfhub_dev_handles_use_the_compressed_format(kaggle: KaggleServer) -> None:
    pulled = api.pull("https://tfhub.dev/acme/tiny/1")
    assert (pulled.hub, pulled.id, pulled.revision) == ("tfhub", "acme/tiny", "1")
    assert any("tf-hub-format=compressed" in r for r in kaggle.requests)
    assert "saved_model.pb" in {f for f, _, _ in pulled.files}
    with pytest.raises(ModelNotFoundError):
        api.pull("tfhub:acme/unknown/1")


def test_tampered_download_is_refused_and_nothing_is_stored(kaggle: KaggleServer) -> None:
    kaggle.tamper = True
    with pytest.raises(IntegrityError, match="MD5"):
        api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    assert api.list_models(registry="tfhub") == []


def test_credentials_are_required_and_explained(
    kaggle: KaggleServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kaggle.require_auth = True
    with pytest.raises(HubAccessError):
        api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    code, out, err = run(capsys, "pull", "tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    assert code != 0 and "KAGGLE_USERNAME" in out + err and "Traceback" not in out + err
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "k3y-not-shown")
    pulled = api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    assert pulled.revision == "2"


def test_unknown_models_fail_clearly(
    kaggle: KaggleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "pull", "tfhub:acme/nothing/tensorFlow2/default")
    assert code != 0 and "Kaggle Models has no" in out + err


def test_missing_extras_name_the_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import sys

    from modelport.convert.tensorflow import export_saved_model
    from modelport.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "kagglehub", None)
    code, out, err = run(capsys, "pull", "tfhub:acme/tiny-classifier/tensorFlow2/default/2")
    assert code != 0 and "pip install 'modelport[kaggle]'" in out + err
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingExtraError, match="tf"):
        export_saved_model(tmp_path, tmp_path, input_shapes=(), opset=17)


@pytest.mark.parametrize("switch", ["MODELPORT_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_kaggle_is_served_from_the_store_or_refused_without_the_network(
    kaggle: KaggleServer, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    from modelport.errors import OfflineError

    pulled = api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default")
    monkeypatch.setenv(switch, "1")
    kaggle.requests.clear()
    again = api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default")
    assert again.from_store and again.revision == pulled.revision == "2"
    assert api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default/2").from_store
    with pytest.raises(OfflineError) as refused:
        api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default/1")
    assert refused.value.one_line().startswith(
        "tfhub:acme/tiny-classifier/tensorFlow2/default@1 is not complete in the store "
        "and offline mode is on."
    )
    with pytest.raises(OfflineError):
        api.search_hub("tiny", hub="tfhub")
    assert kaggle.requests == []


@pytest.mark.parametrize(
    ("option", "flag"),
    [({"exclude": ["*.pb"]}, "--exclude"), ({"allow_pickle": True}, "--allow-pickle")],
)
def test_file_options_are_refused_for_kaggle(
    kaggle: KaggleServer, option: dict[str, object], flag: str
) -> None:
    from modelport.errors import InvalidValueError

    with pytest.raises(InvalidValueError) as refused:
        api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default", **option)  # type: ignore[arg-type]
    assert refused.value.message.startswith(f"{flag} cannot apply to tfhub: models")
    assert kaggle.requests == []


def test_the_preflight_answer_is_not_asked_again(
    kaggle: KaggleServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counts = []
    for progress in (None, lambda event: None):
        monkeypatch.setenv("MODELPORT_HOME", str(tmp_path / f"home-{len(counts)}"))
        api.reset()
        kaggle.requests.clear()
        api.pull("tfhub:acme/tiny-classifier/tensorFlow2/default", progress=progress)
        counts.append(len([r for r in kaggle.requests if "Download" not in r]))
    assert counts[0] == counts[1], kaggle.requests
