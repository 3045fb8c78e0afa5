"""Gateway benchmark: the latency `modelport serve` adds in front of a hosted provider.

    python benchmarks/gateway.py [--requests 2000] [--concurrency 1,64]

A loopback upstream speaking OpenAI's chat completions API (``tests/upstreams``, answering
at once, in its own process) is called twice with the same load, in one run: directly, and
through a real
`modelport serve` process that routes ``openai:gpt-4o`` to it (the same ``openai`` SDK path
every hosted call takes: key lookup, retries, error translation, the call log). The table
gives p50/p99 latency of each and what the gateway adds, non-streaming and streaming (time
to the last byte), and the time to the first streamed token through both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import free_port, serve  # noqa: E402

KEY = "sk-benchmark-key-0000000000"
BODY = {"messages": [{"role": "user", "content": "Say hello to the benchmark"}]}


async def _one(
    client: httpx.AsyncClient, url: str, model: str, stream: bool
) -> tuple[float, float]:
    """Seconds to the whole answer and to its first content chunk."""
    body = {**BODY, "model": model, "stream": stream}
    started = time.perf_counter()
    first = 0.0
    if not stream:
        response = await client.post(url, json=body)
        response.raise_for_status()
        done = time.perf_counter() - started
        return done, done
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not first and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - started
    return time.perf_counter() - started, first


async def _load(
    url: str, model: str, *, stream: bool, requests: int, concurrency: int
) -> tuple[list[float], list[float], int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as client:
        for _ in range(min(50, requests)):  # warm the connections and the server's caches
            await _one(client, url, model, stream)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)
        totals: list[float] = []
        firsts: list[float] = []
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                queue.get_nowait()
                try:
                    total, first = await _one(client, url, model, stream)
                except httpx.HTTPError:
                    errors += 1  # counted and shown: a benchmark that hides failures lies
                    continue
                totals.append(total)
                firsts.append(first)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return totals, firsts, errors


@contextlib.contextmanager
def _upstream() -> Iterator[str]:
    """The loopback OpenAI upstream in its own process (not sharing the client's GIL)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.upstreams.openai_server", str(port), KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument(
        "--log-level", default="info", help="the server's (info writes an access-log line)"
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    with _upstream() as base_url, tempfile.TemporaryDirectory() as home:
        env = {
            "MODELPORT_OPENAI_URL": base_url,
            "OPENAI_API_KEY": KEY,
        }
        with serve(Path(home), "--log-level", args.log_level, env=env) as gateway:
            direct_url = f"{base_url}/chat/completions"
            gateway_url = f"{gateway.url}/v1/chat/completions"
            for stream in (False, True):
                for concurrency in levels:
                    n = args.requests
                    direct, direct_first, direct_errors = asyncio.run(
                        _load(
                            direct_url, "gpt-4o", stream=stream, requests=n, concurrency=concurrency
                        )
                    )
                    through, through_first, through_errors = asyncio.run(
                        _load(
                            gateway_url,
                            "openai:gpt-4o",
                            stream=stream,
                            requests=n,
                            concurrency=concurrency,
                        )
                    )
                    errors = f"{direct_errors}/{through_errors}"
                    rows.append(
                        (
                            stream,
                            concurrency,
                            n,
                            direct,
                            through,
                            direct_first,
                            through_first,
                            errors,
                        )
                    )
    print()
    print(
        "| mode | conc. | requests | direct p50 | direct p99 | gateway p50 | gateway p99 "
        "| added p50 | added p99 | TTFT direct p50 | TTFT gateway p50 | errors d/g |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for stream, concurrency, n, direct, through, direct_first, through_first, errors in rows:
        d50, d99 = _pct(direct, 50), _pct(direct, 99)
        g50, g99 = _pct(through, 50), _pct(through, 99)
        ttft = (
            f"{_pct(direct_first, 50):.2f} ms | {_pct(through_first, 50):.2f} ms"
            if stream
            else "– | –"
        )
        print(
            f"| {'stream' if stream else 'whole'} | {concurrency} | {n} | {d50:.2f} ms | "
            f"{d99:.2f} ms | {g50:.2f} ms | {g99:.2f} ms | {g50 - d50:+.2f} ms | "
            f"{g99 - d99:+.2f} ms | {ttft} | {errors} |"
        )
    mean = statistics.mean(_pct(t, 50) - _pct(d, 50) for _, _, _, d, t, _, _, _ in rows)
    print(f"\nMean added p50 over all rows: {mean:.2f} ms (target ≤ 2 ms).")


if __name__ == "__main__":
    main()
