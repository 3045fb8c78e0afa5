"""Generation benchmark: modelport's KV-cache loop against transformers' generate(), and
onnxruntime-genai when it is importable.

    python benchmarks/generation.py [--sizes tiny,small,medium,PATH] [--prompt-tokens 64]
                                    [--new-tokens 128] [--runs 5] [--threads N] [--int4]

Models (random weights, built here with a small byte-level BPE): ``tiny`` is the tests'
Llama (hidden 32, 2 layers, head_dim 8, 128 positions); ``small`` a Llama of hidden 256,
4 layers, 4 heads (2 KV heads, head_dim 64); ``medium`` hidden 512, 8 layers; a folder
path is a real model (a chat model is asked a question through its chat template; the
random ones get random prompt ids). Every engine gets the same prompt ids and decodes
greedily, in interleaved rounds; the table gives time to first token (TTFT: prompt ids
in, first new token out) and decode speed (tokens/s after the first), medians of
``--runs``, and whether the tokens equal transformers'. modelport runs through
``TextGeneration.stream`` (detokenization and stop strings included); its token times come
from the ``cancelled`` hook, which is asked before each token.

onnxruntime-genai needs its own export, ``python -m onnxruntime_genai.models.builder``
(fp32, and int4 with ``--int4``; its GroupQueryAttention wants head_dim a multiple of 16
on the CPU). Its 0.16+ builder imports classes of transformers newer than the convert
extra allows (< 4.58); 0.15.2's works. To try it without touching this venv:

    python -m venv /tmp/genai
    python -c 'import site; print(site.getsitepackages()[0])' \\
        > /tmp/genai/lib/python3.11/site-packages/shared.pth
    /tmp/genai/bin/pip install --no-deps onnxruntime-genai==0.15.2 onnx-ir
    /tmp/genai/bin/python benchmarks/generation.py --int4
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
os.environ.setdefault("USE_TF", "0")  # transformers must not load TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZES: dict[str, dict[str, int] | None] = {
    "tiny": None,  # tests/tiny_models.py's Llama, as it is
    "small": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4},
    "medium": {"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 8},
}


#: The question a real chat model (``--sizes PATH``) is asked.
QUESTION = (
    "Explain in a few paragraphs how a transformer language model generates text one token "
    "at a time, and why a key-value cache makes that faster."
)


def build(folder: Path, size: str) -> Path:
    """A random Llama of that size with the tests' BPE tokenizer."""
    import torch
    import transformers

    from tests import tiny_models

    shape = SIZES[size]
    if shape is None:
        return tiny_models.build_decoder(folder, "llama")
    torch.manual_seed(0)
    tokenizer: Any = tiny_models.bpe_tokenizer(folder)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **shape,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


class Timed:
    """Token times of one generation: ``mark()`` when a token is out."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: list[float] = []

    def mark(self) -> None:
        self.marks.append(time.perf_counter())

    def ttft_ms(self) -> float:
        return (self.marks[0] - self.start) * 1000

    def decode_rate(self) -> float:
        if len(self.marks) < 2:
            return float("nan")
        return (len(self.marks) - 1) / (self.marks[-1] - self.marks[0])


def run_modelport(pipeline: Any, prompt: list[int], new: int) -> tuple[list[int], Timed]:
    timed = Timed()
    asked = 0

    def cancelled() -> bool:
        # Asked before each token: from the second call on, a token has just come out.
        nonlocal asked
        if asked:
            timed.mark()
        asked += 1
        return False

    timed.start = time.perf_counter()
    ids: list[int] = []
    for delta in pipeline.stream(prompt, max_new_tokens=new, temperature=0, cancelled=cancelled):
        ids.extend(delta.token_ids)
    if len(timed.marks) < len(ids):  # the last token: the stream ended without asking again
        timed.mark()
    return ids, timed


def run_transformers(model: Any, prompt: list[int], new: int) -> tuple[list[int], Timed]:
    import torch
    from transformers.generation.streamers import BaseStreamer

    timed = Timed()

    class Clock(BaseStreamer):  # type: ignore[misc]
        first = True

        def put(self, value: Any) -> None:
            if self.first:  # the prompt itself
                self.first = False
                return
            timed.mark()

        def end(self) -> None:
            pass

    ids = torch.tensor([prompt])
    timed.start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new,
            do_sample=False,
            streamer=Clock(),
            pad_token_id=model.generation_config.eos_token_id,
        )
    return out[0, len(prompt) :].tolist(), timed


def run_genai(model: Any, prompt: list[int], new: int) -> tuple[list[int], Timed]:
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + new, do_sample=False)
    timed = Timed()
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    ids: list[int] = []
    while not generator.is_done():
        generator.generate_next_token()
        ids.append(int(generator.get_next_tokens()[0]))
        timed.mark()
    return ids, timed


def genai_export(source: Path, out: Path, precision: str) -> str | None:
    """The model builder's export, or why it failed."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "onnxruntime_genai.models.builder",
            "-i",
            str(source),
            "-o",
            str(out),
            "-p",
            precision,
            "-e",
            "cpu",
            "-c",
            str(out.parent / "genai-cache"),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not (out / "genai_config.json").exists():
        return (done.stderr.strip().splitlines() or ["failed"])[-1]
    return None


Engine = Callable[[], tuple[list[int], Timed]]


def measure(engines: list[tuple[str, Engine]], runs: int) -> list[tuple[str, Any]]:
    """Each engine once to warm up, then ``runs`` rounds of all of them in turn (so that a
    busy machine slows them alike): tokens, median TTFT and median decode speed."""
    results: dict[str, list[tuple[list[int], Timed]]] = {}
    failed: dict[str, str] = {}
    for round_ in range(runs + 1):
        for label, engine in engines:
            if label in failed:
                continue
            try:
                outcome = engine()
            except Exception as e:  # an engine that cannot run this model: a row saying why
                failed[label] = f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"
                continue
            if round_:
                results.setdefault(label, []).append(outcome)
    rows: list[tuple[str, Any]] = []
    for label, _ in engines:
        if label in failed:
            rows.append((label, failed[label]))
            continue
        done = results[label]
        ttft = statistics.median(t.ttft_ms() for _, t in done)
        rate = statistics.median(t.decode_rate() for _, t in done)
        rows.append((label, (done[0][0], ttft, rate)))
    return rows


def agreement(ids: list[int], expected: list[int]) -> str:
    """ "equal", or how far the tokens agree with the reference's."""
    if ids == expected:
        return f"equal ({len(ids)} tokens)"
    pairs = list(zip(ids, expected, strict=False))
    first = next((i for i, (a, b) in enumerate(pairs) if a != b), len(pairs))
    same = sum(a == b for a, b in pairs)
    return f"first {first} equal, {same}/{len(expected)} agree"


def bench(size: str, root: Path, args: argparse.Namespace, og: Any) -> None:
    import numpy as np
    from transformers import AutoModelForCausalLM

    import modelport.api as api
    from modelport.runtime.model import Model

    folder = Path(size) if size not in SIZES else build(root / size, size)
    pipeline = Model.load(api.convert(str(folder)).path, threads=args.threads).pipeline
    reference = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    new = min(args.new_tokens, reference.config.max_position_embeddings - args.prompt_tokens)
    vocab = reference.config.vocab_size
    prompt = np.random.default_rng(0).integers(1, vocab, args.prompt_tokens).tolist()
    if pipeline.chat_template.available:  # a real chat model: a real question
        prompt = pipeline.generator.encode(
            pipeline.render_chat([{"role": "user", "content": QUESTION}]),
            add_special_tokens=False,
        )
    size = folder.name
    engines: list[tuple[str, Engine]] = [
        ("transformers generate()", functools.partial(run_transformers, reference, prompt, new)),
        ("modelport stream (ORT)", functools.partial(run_modelport, pipeline, prompt, new)),
    ]
    rows: list[tuple[str, Any]] = []
    if og is not None:
        for precision in ("fp32", "int4") if args.int4 else ("fp32",):
            out = root / f"{size}-genai-{precision}"
            error = genai_export(folder, out, precision)
            label = f"onnxruntime-genai {precision}"
            if error:
                rows.append((label, f"export failed: {error[:80]}"))
                continue
            if args.threads:  # the same thread count as the others
                path = out / "genai_config.json"
                config = json.loads(path.read_text())
                options = config["model"]["decoder"].setdefault("session_options", {})
                options["intra_op_num_threads"] = args.threads
                path.write_text(json.dumps(config))
            model = og.Model(str(out))
            engines.append((label, functools.partial(run_genai, model, prompt, new)))
    rows = measure(engines, args.runs) + rows
    expected, base = None, None
    for label, row in rows:
        if isinstance(row, str):
            print(f"{size:<8} {label:<26} {row}")
            continue
        ids, ttft, rate = row
        if expected is None:
            expected, base = ids, rate
        print(
            f"{size:<8} {label:<26} {ttft:>9.2f} {rate:>13.0f} {rate / base:>6.2f}x  "
            f"{agreement(ids, expected)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="tiny,small", help="tiny, small, medium, or a model folder's path"
    )
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch and ORT threads (0: theirs)")
    parser.add_argument("--int4", action="store_true", help="also onnxruntime-genai int4")
    args = parser.parse_args()

    import onnxruntime
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import onnxruntime_genai as og
    except ImportError:
        og = None
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
        f"{onnxruntime.__version__} ({args.threads or 'default'} threads), onnxruntime-genai "
        f"{getattr(og, '__version__', 'not installed')}; prompt {args.prompt_tokens} tokens, "
        f"{args.new_tokens} new, greedy, median of {args.runs}"
    )
    header = f"{'model':<8} {'engine':<26} {'TTFT ms':>9} {'decode tok/s':>13} {'vs HF':>7}  greedy"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MODELPORT_HOME"] = str(Path(tmp) / "home")
        for size in args.sizes.split(","):
            bench(size, Path(tmp), args, og)


if __name__ == "__main__":
    main()
